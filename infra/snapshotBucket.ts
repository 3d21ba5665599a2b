import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface SnapshotBucketArgs {
  clusterName: string;
  /** An existing bucket; without it the program creates one. */
  existingBucket?: string;
  retentionDays: number;
  /** The etcd members' IAM role (no other machine has it): may put and get only under the cluster's prefix. */
  nodeRoleName: pulumi.Input<string>;
  /** A KMS key ARN: the bucket's default encryption, the only key its objects may use, and the members may use it. */
  kmsKeyId?: string;
}

/** S3's service name in the key's region (a bucket uses a key of its own region): the key serves S3 requests only. */
function s3ServiceOfKey(kmsKeyArn: string): string {
  const [, partition, , region] = kmsKeyArn.split(":");
  return `s3.${region}.${partition === "aws-cn" ? "amazonaws.com.cn" : "amazonaws.com"}`;
}

/** The role policy of the etcd members: put and get under the cluster's prefix, over TLS only; the KMS key if any. */
export function snapshotAccessPolicy(bucket: string, prefix: string, kmsKeyId?: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Action: ["s3:PutObject", "s3:GetObject"], Resource: `arn:aws:s3:::${bucket}/${prefix}/*` },
      { Effect: "Allow", Action: "s3:ListBucket", Resource: `arn:aws:s3:::${bucket}`, Condition: { StringLike: { "s3:prefix": [`${prefix}/*`] } } },
      // TLS only, also for an existing bucket, whose own policy the program does not manage.
      { Effect: "Deny", Action: ["s3:PutObject", "s3:GetObject", "s3:ListBucket"], Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`], Condition: { Bool: { "aws:SecureTransport": "false" } } },
      ...(kmsKeyId
        ? [{ Effect: "Allow", Action: ["kms:GenerateDataKey", "kms:Decrypt"], Resource: kmsKeyId, Condition: { StringEquals: { "kms:ViaService": s3ServiceOfKey(kmsKeyId) } } }]
        : []),
    ],
  });
}

/**
 * The program's bucket policy: no request without TLS, from anyone; with a KMS key, no object written with another
 * key or with S3-managed encryption.
 */
export function snapshotBucketPolicy(bucket: string, kmsKeyId?: string): string {
  const objects = `arn:aws:s3:::${bucket}/*`;
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      { Sid: "TlsOnly", Effect: "Deny", Principal: "*", Action: "s3:*", Resource: [`arn:aws:s3:::${bucket}`, objects], Condition: { Bool: { "aws:SecureTransport": "false" } } },
      ...(kmsKeyId
        ? [
            { Sid: "KmsOnly", Effect: "Deny", Principal: "*", Action: "s3:PutObject", Resource: objects, Condition: { StringNotEqualsIfExists: { "s3:x-amz-server-side-encryption": "aws:kms" } } },
            { Sid: "ThisKeyOnly", Effect: "Deny", Principal: "*", Action: "s3:PutObject", Resource: objects, Condition: { StringNotEqualsIfExists: { "s3:x-amz-server-side-encryption-aws-kms-key-id": kmsKeyId } } },
          ]
        : []),
    ],
  });
}

/**
 * Where etcd snapshots go on AWS: a bucket with versioning, default encryption (S3-managed, or `kmsKeyId`), public
 * access blocked, TLS required and an expiry after `retentionDays` (or an existing bucket), and a policy on the etcd
 * members' role limited to `<bucket>/<cluster>/`. A snapshot holds every Secret of the cluster: no other machine
 * (workers, the bastion, control planes with external etcd) has any access.
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
        {
          bucket: bucket.id,
          rules: [
            {
              applyServerSideEncryptionByDefault: args.kmsKeyId ? { sseAlgorithm: "aws:kms", kmsMasterKeyId: args.kmsKeyId } : { sseAlgorithm: "AES256" },
              bucketKeyEnabled: true,
            },
          ],
        },
        { parent },
      );
      const noPublic = new aws.s3.BucketPublicAccessBlock(
        `${name}-no-public`,
        { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
        { parent },
      );
      // After the public access block: S3 refuses concurrent changes to a bucket's policy and its access block.
      new aws.s3.BucketPolicy(`${name}-policy`, { bucket: bucket.id, policy: bucket.bucket.apply((b) => snapshotBucketPolicy(b, args.kmsKeyId)) }, { parent, dependsOn: [noPublic] });
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
        policy: bucketName.apply((b) => snapshotAccessPolicy(b, prefix, args.kmsKeyId)),
      },
      { parent },
    );
    this.bucketName = bucketName;
    this.s3Uri = pulumi.interpolate`s3://${bucketName}/${prefix}`;
    this.registerOutputs({ bucketName: this.bucketName, s3Uri: this.s3Uri });
  }
}
