import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { NodeHost, nodeStep } from "../infra/steps";
import { kubeconfigClientExpiry } from "../infra/scripts/readKubeconfig";
import { EtcdHealthTarget } from "./scripts/common";
import { parseCertificatesExpiry, renewCertificatesScript } from "./scripts/renewCertificates";

/** What the deployed stack recorded about its certificates (its `certificates` output); empty on a new stack. */
export interface DeployedCertificates {
  /** The earliest expiry of any kubeadm certificate on any control plane (ISO 8601). */
  controlPlaneExpiry?: string;
  /** When the program's admin credential (the `kubeconfig` output) expires. */
  kubeconfigExpiry?: string;
  /** The renewal round the deployed steps ran with. */
  round?: string;
}

export interface RenewalDecision {
  /** The round the steps carry: unchanged (nothing runs) unless a renewal is due. */
  round: string;
  due: boolean;
  /** When the next renewal is due (ISO 8601), when an expiry is known. */
  dueAt?: string;
  /** Why, for the preview log. */
  reason: string;
}

/** The round of a stack that has not recorded one yet. */
export const initialRound = "initial";

/**
 * Whether a renewal is due now, as a round: the earliest recorded expiry (control-plane certificates or the admin
 * credential) minus renewBeforeDays has passed. A due renewal gets a new round, named after the expiry it renews
 * ("before-20271201T220505Z"); that changes the certificate and credential steps' scripts, so `pulumi preview` shows
 * them updating and `pulumi up` runs them. Otherwise the deployed round is kept and nothing changes.
 */
export function certificateRenewalRound(deployed: DeployedCertificates | undefined, now: Date, renewBeforeDays: number): RenewalDecision {
  const kept = deployed?.round ?? initialRound;
  const expiries = [deployed?.controlPlaneExpiry, deployed?.kubeconfigExpiry].filter((e): e is string => e !== undefined && !Number.isNaN(Date.parse(e)));
  if (expiries.length === 0) return { round: kept, due: false, reason: "no certificate expiry recorded yet" };
  const earliest = expiries.reduce((a, b) => (Date.parse(a) <= Date.parse(b) ? a : b));
  const dueAt = new Date(Date.parse(earliest) - renewBeforeDays * 86_400_000);
  const what = earliest === deployed?.controlPlaneExpiry ? "a control-plane certificate" : "the admin credential";
  if (now.getTime() < dueAt.getTime()) {
    return { round: kept, due: false, dueAt: dueAt.toISOString(), reason: `${what} expires ${earliest}: renewal due from ${dueAt.toISOString()}` };
  }
  const round = `before-${earliest.replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}`;
  return { round, due: true, dueAt: dueAt.toISOString(), reason: `${what} expires ${earliest}, within ${renewBeforeDays} days: renewal round ${round}` };
}

export interface CertificateRenewalArgs {
  /** Control planes in order; renewed one at a time in this order. */
  controlPlanes: NodeHost[];
  kubernetesVersion: string;
  renewBeforeDays: number;
  round: string;
  /** The etcd members each control plane finds healthy before and after its restart. */
  etcd: pulumi.Input<EtcdHealthTarget>;
  /** What the first step waits for: the end of bootstrap and of any upgrade in the same run. */
  after: pulumi.Input<pulumi.Resource>[];
  /** The program's admin kubeconfig (a secret), to record when its credential expires. */
  kubeconfig: pulumi.Output<string>;
}

/** The `certificates` stack output. */
export interface CertificatesOutput {
  /** The earliest expiry of any kubeadm certificate on any control plane (also the `certificatesExpireAt` output). */
  controlPlaneExpiry?: string;
  /** Per control plane: its earliest certificate's expiry. */
  byNode: Record<string, string | undefined>;
  /** When the admin credential of the `kubeconfig` output (and the program's provider) expires. */
  kubeconfigExpiry?: string;
  renewBeforeDays: number;
  round: string;
}

/**
 * Certificate renewal: on every control plane, one at a time, a step that renews kubeadm's certificates when they are
 * due (and restarts that control plane on them) and reports their earliest expiry. Invariant: never more than one
 * control plane restarts at a time (the steps are chained) — etcd quorum and the API's availability depend on it.
 * The steps carry the Kubernetes version (they report again after an upgrade, which renews the certificates) and the
 * renewal round (certificateRenewalRound): nothing runs until one of them changes.
 */
export class CertificateRenewal extends pulumi.ComponentResource {
  readonly steps: command.remote.Command[];
  readonly output: pulumi.Output<CertificatesOutput>;

  constructor(name: string, args: CertificateRenewalArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kubeadm-ha:lifecycle:CertificateRenewal", name, {}, opts);
    const out = createCertificateRenewal(args, this);
    this.steps = out.steps;
    this.output = out.output;
    this.registerOutputs({});
  }
}

export function createCertificateRenewal(args: CertificateRenewalArgs, parent: pulumi.Resource) {
  const steps: command.remote.Command[] = [];
  let previous: pulumi.Input<pulumi.Resource>[] = args.after;
  for (const host of args.controlPlanes) {
    const step = nodeStep(
      `${host.name}-certificates`,
      {
        host,
        script: pulumi.output(args.etcd).apply((etcd) =>
          renewCertificatesScript({ node: host.name, kubernetesVersion: args.kubernetesVersion, renewBeforeDays: args.renewBeforeDays, round: args.round, etcd }),
        ),
        // A replaced machine reports (and renews) its own certificates.
        ...(host.replaceableId ? { triggers: [host.replaceableId] } : {}),
      },
      { parent, dependsOn: previous },
    );
    steps.push(step);
    previous = [step];
  }
  const output = pulumi.all([pulumi.all(steps.map((s) => s.stdout)), args.kubeconfig]).apply(([stdouts, kubeconfig]) => {
    const byNode = Object.fromEntries(args.controlPlanes.map((h, i) => [h.name, parseCertificatesExpiry(stdouts[i])]));
    const known = Object.values(byNode).filter((e): e is string => e !== undefined);
    const controlPlaneExpiry = known.length > 0 ? known.reduce((a, b) => (a <= b ? a : b)) : undefined;
    return { controlPlaneExpiry, byNode, kubeconfigExpiry: kubeconfigClientExpiry(kubeconfig), renewBeforeDays: args.renewBeforeDays, round: args.round };
  });
  // Dates are not secret, though one of them is read from the (secret) kubeconfig.
  return { steps, output: pulumi.unsecret(output) };
}
