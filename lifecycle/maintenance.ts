import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { NodeHost, nodeStep } from "../infra/steps";
import { maintenanceDrainScript, maintenanceEndScript } from "./scripts/maintenance";

export interface MaintenanceArgs {
  /** Node names from config `maintenance`. */
  nodes: string[];
  controlPlanes: NodeHost[];
  /** What the steps wait for: bootstrap and any upgrade of the same run. */
  after: pulumi.Input<pulumi.Resource>[];
}

/**
 * Declared maintenance: one step per listed node, run from the first control plane. Creating it cordons, drains and
 * marks the node as held (so an upgrade's uncordon leaves it alone); deleting it — the name left the list — clears
 * the mark and uncordons. Preview shows both as a create or a delete of `<node>-maintenance`.
 */
export class Maintenance extends pulumi.ComponentResource {
  readonly steps: command.remote.Command[];

  constructor(name: string, args: MaintenanceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kubeadm-ha:lifecycle:Maintenance", name, {}, opts);
    const runsOn = args.controlPlanes[0];
    this.steps = args.nodes.map((node) => {
      const role = args.controlPlanes.some((h) => h.name === node) ? "control-plane" : "worker";
      return nodeStep(
        `${node}-maintenance`,
        {
          host: runsOn,
          script: maintenanceDrainScript({ node, runsOn: runsOn.name, role }),
          deleteScript: maintenanceEndScript({ node, runsOn: runsOn.name }),
        },
        { parent: this, dependsOn: args.after },
      );
    });
    this.registerOutputs({});
  }
}
