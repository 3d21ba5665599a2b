import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface SnapshotBucketArgs {
  clusterName: string;
  /** An existing bucket; without it the program creates one. */
  existingBucket?: string;
  retentionDays: number;
  /** The nodes' IAM role: may put and get only under the cluster's prefix. */
  nodeRoleName: pulumi.Input<string>;
}

/**
 * Where etcd snapshots go on AWS: a bucket with versioning, default encryption, public access blocked and an expiry
 * after `retentionDays` (or an existing bucket), and a node-role policy limited to `<bucket>/<cluster>/`.
 */
export class SnapshotBucket extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;
  /** s3://bucket/<cluster>/etcd */
  readonly s3Uri: pulumi.Output<string>;

  constructor(name: string, args: SnapshotBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kubeadm-ha:backup:SnapshotBucket", name, {}, opts);
    const parent = this;
    const prefix = `${args.clusterName}/etcd`;
    let bucketName: pulumi.Output<string>;
    if (args.existingBucket) {
      bucketName = pulumi.output(args.existingBucket);
    } else {
      const tags = { "kubeadm-ha/cluster": args.clusterName };
      const bucket = new aws.s3.Bucket(`${name}`, { forceDestroy: false, tags }, { parent, protect: true });
      new aws.s3.BucketVersioning(`${name}-versioning`, { bucket: bucket.id, versioningConfiguration: { status: "Enabled" } }, { parent });
      new aws.s3.BucketServerSideEncryptionConfiguration(
        `${name}-encryption`,
        { bucket: bucket.id, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true }] },
        { parent },
      );
      new aws.s3.BucketPublicAccessBlock(
        `${name}-no-public`,
        { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
        { parent },
      );
      new aws.s3.BucketLifecycleConfiguration(
        `${name}-expiry`,
        {
          bucket: bucket.id,
          rules: [
            {
              id: "expire-etcd-snapshots",
              status: "Enabled",
              filter: { prefix: `${prefix}/` },
              expiration: { days: args.retentionDays },
              noncurrentVersionExpiration: { noncurrentDays: args.retentionDays },
              abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
            },
          ],
        },
        { parent },
      );
      bucketName = bucket.bucket;
    }
    new aws.iam.RolePolicy(
      `${name}-node-access`,
      {
        role: args.nodeRoleName,
        policy: bucketName.apply((b) =>
          JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              { Effect: "Allow", Action: ["s3:PutObject", "s3:GetObject"], Resource: `arn:aws:s3:::${b}/${prefix}/*` },
              { Effect: "Allow", Action: "s3:ListBucket", Resource: `arn:aws:s3:::${b}`, Condition: { StringLike: { "s3:prefix": [`${prefix}/*`] } } },
            ],
          }),
        ),
      },
      { parent },
    );
    this.bucketName = bucketName;
    this.s3Uri = pulumi.interpolate`s3://${bucketName}/${prefix}`;
    this.registerOutputs({ bucketName: this.bucketName, s3Uri: this.s3Uri });
  }
}
