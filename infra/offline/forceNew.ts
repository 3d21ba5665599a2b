// The input properties whose change makes a provider replace a resource instead of updating it ("force-new"), per
// resource type the program registers. The offline diff (plan.ts) consults it, so `npm run plan` says `replace`
// where `pulumi preview` would. Pure data.
//
// Where the facts come from: @pulumi/aws 7.x is bridged from terraform-provider-aws, and its installed npm package
// carries no schema; the bridge replaces a resource exactly when Terraform's schema marks a changed property
// `ForceNew: true` (or a CustomizeDiff forces it). Each row names the Terraform source it was read from
// (github.com/hashicorp/terraform-provider-aws, internal/service/...); "not re-read here" marks a row written from
// that provider's documentation without its source open. @pulumi/tls and @pulumi/random are Terraform Plugin Framework
// providers whose every configurable attribute carries `RequiresReplace`. @pulumi/command needs no row: its SDK
// declares `replaceOnChanges: ["triggers[*]"]` itself (the diff reads resource options), and every other input is an
// in-place update. Not covered: the Kubernetes provider and Helm release (their replacements come from the cluster).
//
// Only properties the program sets are listed (and the names that would replace a resource if the program ever set
// them), never every force-new property of a type.

/** Inputs before and after, for rules that force a replacement only under a condition. */
export type ForceNewCondition = (before: Record<string, any>, after: Record<string, any>) => boolean;

/** A property path (`rootBlockDevice.encrypted`) that replaces the resource when its value changes, always or when `when` holds. */
export interface ForceNewRule {
  path: string;
  when?: ForceNewCondition;
}

const always = (...paths: string[]): ForceNewRule[] => paths.map((path) => ({ path }));

/** Resource type → its force-new input properties. */
export const forceNewProperties: Readonly<Record<string, readonly ForceNewRule[]>> = {
  // internal/service/ec2/ec2_instance.go (read here): ami, associate_public_ip_address, key_name, subnet_id,
  // root_block_device.encrypted are ForceNew; user_data is forced new by CustomizeDiff only with
  // user_data_replace_on_change. NOT force-new (updated in place): instance_type (the update stops the instance,
  // modifies it and starts it again), root_block_device.volume_size/volume_type/delete_on_termination (ModifyVolume),
  // vpc_security_group_ids, iam_instance_profile, metadata_options, tags; user_data without replace-on-change (also a
  // stop and start).
  "aws:ec2/instance:Instance": [
    ...always("ami", "associatePublicIpAddress", "keyName", "subnetId", "rootBlockDevice.encrypted", "availabilityZone", "privateIp"),
    { path: "userData", when: (_before, after) => after.userDataReplaceOnChange === true },
  ],
  // internal/service/ec2/ec2_key_pair.go (read here): key_name, key_name_prefix, public_key ForceNew (public_key's
  // StateFunc trims surrounding whitespace, so only the trimmed key counts).
  "aws:ec2/keyPair:KeyPair": [
    { path: "publicKey", when: (before, after) => String(before.publicKey ?? "").trim() !== String(after.publicKey ?? "").trim() },
    ...always("keyName", "keyNamePrefix"),
  ],
  // internal/service/elbv2/load_balancer.go (read here): internal, load_balancer_type, name, name_prefix ForceNew.
  // customizeDiffLoadBalancerNLB (not re-read here) forces a new network load balancer when a subnet is removed.
  "aws:lb/loadBalancer:LoadBalancer": [
    ...always("internal", "loadBalancerType", "name", "namePrefix"),
    { path: "subnets", when: (before, after) => after.loadBalancerType === "network" && ((before.subnets ?? []) as unknown[]).some((s) => !((after.subnets ?? []) as unknown[]).includes(s)) },
  ],
  // internal/service/elbv2/target_group.go (not re-read here): name, name_prefix, port, protocol, target_type, vpc_id.
  "aws:lb/targetGroup:TargetGroup": always("name", "namePrefix", "port", "protocol", "targetType", "vpcId"),
  // internal/service/elbv2/target_group_attachment.go (not re-read here): the resource has no update; every argument
  // is ForceNew.
  "aws:lb/targetGroupAttachment:TargetGroupAttachment": always("targetGroupArn", "targetId", "port", "availabilityZone"),
  // internal/service/elbv2/listener.go (not re-read here): load_balancer_arn ForceNew.
  "aws:lb/listener:Listener": always("loadBalancerArn"),
  // internal/service/ec2/ec2_eip.go (not re-read here): domain ForceNew; instance is an association, updated in place.
  "aws:ec2/eip:Eip": always("domain"),
  // internal/service/ec2/vpc_.go, vpc_subnet.go, vpc_nat_gateway.go, vpc_route_table.go, vpc_security_group.go (not
  // re-read here).
  "aws:ec2/vpc:Vpc": always("cidrBlock"),
  "aws:ec2/subnet:Subnet": always("vpcId", "cidrBlock", "availabilityZone"),
  "aws:ec2/natGateway:NatGateway": always("allocationId", "subnetId", "connectivityType"),
  "aws:ec2/routeTable:RouteTable": always("vpcId"),
  // internal/service/ec2/vpc_internet_gateway.go (not re-read here): vpc_id is an attachment, changed in place.
  "aws:ec2/internetGateway:InternetGateway": [],
  "aws:ec2/routeTableAssociation:RouteTableAssociation": always("subnetId", "gatewayId"),
  "aws:ec2/securityGroup:SecurityGroup": always("name", "namePrefix", "description", "vpcId"),
  // internal/service/ec2/vpc_security_group_ingress_rule.go (Plugin Framework, not re-read here): security_group_id
  // RequiresReplace; the rule's ports, protocol and peer are updated in place (ModifySecurityGroupRules).
  "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": always("securityGroupId"),
  "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": always("securityGroupId"),
  // internal/service/iam/role.go, instance_profile.go, policy.go, role_policy.go, role_policy_attachment.go (not re-read here).
  "aws:iam/role:Role": always("name", "namePrefix", "path"),
  "aws:iam/instanceProfile:InstanceProfile": always("name", "namePrefix", "path"),
  "aws:iam/policy:Policy": always("name", "namePrefix", "path", "description"),
  "aws:iam/rolePolicy:RolePolicy": always("name", "namePrefix", "role"),
  "aws:iam/rolePolicyAttachment:RolePolicyAttachment": always("role", "policyArn"),
  // internal/service/s3/bucket*.go (not re-read here): the bucket's name; each configuration resource's bucket.
  "aws:s3/bucket:Bucket": always("bucket", "bucketPrefix"),
  "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": always("bucket", "expectedBucketOwner"),
  "aws:s3/bucketPolicy:BucketPolicy": always("bucket"),
  "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": always("bucket"),
  "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": always("bucket", "expectedBucketOwner"),
  "aws:s3/bucketVersioning:BucketVersioning": always("bucket", "expectedBucketOwner"),
  // internal/service/ssm/parameter.go (not re-read here): name ForceNew.
  "aws:ssm/parameter:Parameter": always("name"),
  // terraform-provider-tls (Plugin Framework): every configurable attribute RequiresReplace.
  "tls:index/privateKey:PrivateKey": always("algorithm", "ecdsaCurve", "rsaBits"),
  "tls:index/selfSignedCert:SelfSignedCert": always("privateKeyPem", "subject", "validityPeriodHours", "allowedUses", "isCaCertificate", "dnsNames", "ipAddresses", "earlyRenewalHours"),
  "tls:index/certRequest:CertRequest": always("privateKeyPem", "subject", "dnsNames", "ipAddresses"),
  "tls:index/locallySignedCert:LocallySignedCert": always("certRequestPem", "caPrivateKeyPem", "caCertPem", "validityPeriodHours", "allowedUses", "earlyRenewalHours", "isCaCertificate"),
  // terraform-provider-random (Plugin Framework): every configurable attribute RequiresReplace.
  "random:index/randomString:RandomString": always("length", "special", "upper", "lower", "numeric", "keepers", "overrideSpecial", "minLower", "minUpper", "minNumeric", "minSpecial"),
  "random:index/randomPassword:RandomPassword": always("length", "special", "upper", "lower", "numeric", "keepers", "overrideSpecial", "minLower", "minUpper", "minNumeric", "minSpecial"),
  "random:index/randomBytes:RandomBytes": always("length", "keepers"),
};

function valueAt(inputs: Record<string, any>, path: string): unknown {
  return path.split(".").reduce<any>((v, key) => (v === null || v === undefined ? undefined : v[key]), inputs);
}

/**
 * The force-new properties of `type` that this change touches: a changed value (its condition holding), or a value
 * unknown at preview (`unknownKeys`: top-level inputs that depend on a resource being replaced), which the provider
 * must treat as a change.
 */
export function forceNewChanges(type: string, before: Record<string, any>, after: Record<string, any>, unknownKeys: ReadonlySet<string> = new Set()): string[] {
  const rules = forceNewProperties[type] ?? [];
  const stable = (v: unknown) => JSON.stringify(v ?? null, (_k, x) => (x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));
  return rules
    .filter((rule) => {
      if (unknownKeys.has(rule.path.split(".")[0])) return true;
      if (stable(valueAt(before, rule.path)) === stable(valueAt(after, rule.path))) return false;
      return rule.when ? rule.when(before, after) : true;
    })
    .map((rule) => rule.path);
}
