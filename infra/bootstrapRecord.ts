// What the stack records about each node's bootstrap (its `bootstrap` output), and the bootstrap inputs a node gets on
// this run. Pure, except the run's own start time (runStartedAt).
//
// Important: a bootstrap step (prepare, join, the join-credentials minted for it) is replaced when its machine is, and
// Pulumi fills every ignoreChanges property of a replacement from the OLD inputs. So these steps ignore nothing: their
// inputs are pinned per machine instead. While the machine is the one recorded, they are exactly what it was
// bootstrapped with (a version bump or a later mint never changes them); a machine the stack has not recorded (new,
// replaced, or whose join has not finished in a successful run) gets the cluster's current version and a credentials
// round of this run, so its token and certificate upload are minted for it, now.

/** One node's bootstrap as recorded by the run that finished its join. */
export interface NodeBootstrap {
  /** The machine's identity: the instance id on AWS, the address of a static host. */
  machine: string;
  /** The release the node was prepared at (its prepare installs it; its join configuration's API version follows it). */
  kubernetesVersion: string;
  /** The run whose join credentials the node joined with (an ISO time): a new round mints new ones. */
  round: string;
}

/** The `bootstrap` stack output: node name → its bootstrap. */
export type BootstrapRecord = Record<string, NodeBootstrap>;

/**
 * The bootstrap inputs of a node on this run: the recorded ones while its machine is the recorded one; otherwise the
 * cluster's current version and this run's round.
 */
export function bootstrapFor(recorded: NodeBootstrap | undefined, machine: string, current: { kubernetesVersion: string; round: string }): NodeBootstrap {
  if (recorded !== undefined && recorded.machine === machine) return recorded;
  return { machine, kubernetesVersion: current.kubernetesVersion, round: current.round };
}

/**
 * The version a node that joins now installs: the version the deployed cluster runs (its last successful run's
 * kubernetesVersion). A run that also bumps the version upgrades the new node with the others (its upgrade steps are
 * new too); a node prepared at the new version before the control planes are upgraded would run a kubelet newer than
 * the apiservers. A new stack: the configured version.
 */
export function joiningVersion(deployedVersion: string | undefined, configured: string): string {
  return deployedVersion ?? configured;
}

/** Reads a recorded `bootstrap` output, keeping only well-formed entries (an unreadable entry is a node not recorded). */
export function parseBootstrapRecord(value: unknown): BootstrapRecord | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const out: BootstrapRecord = {};
  for (const [name, entry] of Object.entries(value as Record<string, unknown>)) {
    const e = entry as Partial<NodeBootstrap> | null;
    if (e && typeof e.machine === "string" && typeof e.kubernetesVersion === "string" && typeof e.round === "string") {
      out[name] = { machine: e.machine, kubernetesVersion: e.kubernetesVersion, round: e.round };
    }
  }
  return out;
}

let startedAt = new Date().toISOString();

/** When this program run started: one value per `pulumi up` / `preview` process (and per offline plan). */
export function runStartedAt(): string {
  return startedAt;
}

/** For tests of a later run (a resumed `pulumi up`) in the same process. */
export function setRunStartedAt(at: string): void {
  startedAt = at;
}
