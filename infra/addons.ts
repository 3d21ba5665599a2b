import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { AddonConfig, AddonSource, createdNamespace } from "./addonsConfig";

export interface AddonsArgs {
  /** In install order (addonsConfig.ts `installOrder`): every add-on comes after those it depends on. */
  addons: AddonConfig[];
  /** The Kubernetes provider the program builds from its admin credential (the CNI's). */
  provider: k8s.Provider;
  /** What every add-on waits for: the CNI, every node Ready, the rolling upgrade's last steps. */
  after: pulumi.Input<pulumi.Resource>[];
  /** The `addons` config key is a Pulumi secret: chart values are kept secret in state and in the plan. */
  secretValues?: boolean;
}

/** The Pulumi resource that installs one add-on's source, rendered by the Kubernetes provider. */
export type AddonInstall = k8s.helm.v4.Chart | k8s.kustomize.v2.Directory | k8s.yaml.v2.ConfigGroup;

/**
 * The cluster's add-ons, installed through @pulumi/kubernetes: a Helm chart with helm.v4.Chart, a Kustomize directory
 * with kustomize.v2.Directory, manifests with yaml.v2.ConfigGroup. The provider renders each in preview, so every
 * object it will apply shows in the plan, and applies them with server-side apply.
 * Invariants: an add-on waits only for `after`, its namespace and the add-ons it names in dependsOn, so a failed
 * add-on holds back only those that depend on it (`pulumi up --continue-on-error` goes on with the rest), and no
 * lifecycle step ever waits for an add-on. The program creates each add-on namespace that is not built in, once,
 * and deletes it with the last add-on that uses it.
 */
export class Addons extends pulumi.ComponentResource {
  readonly installs = new Map<string, AddonInstall>();
  readonly namespaces = new Map<string, k8s.core.v1.Namespace>();

  constructor(name: string, args: AddonsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kubeadm-ha:cluster:Addons", name, {}, opts);
    const waitFor = (deps: string[]): pulumi.Input<pulumi.Resource>[] => [...args.after, ...deps.flatMap((d) => [this.installOf(d), appliedObjects(this.installOf(d))])];
    for (const addon of args.addons) {
      const ns = createdNamespace(addon.source);
      if (ns !== undefined && !this.namespaces.has(ns)) {
        // A namespace is part of the add-ons in it: it waits for what all of them wait for.
        const sharing = args.addons.filter((a) => createdNamespace(a.source) === ns);
        const common = addon.dependsOn.filter((d) => sharing.every((a) => a.dependsOn.includes(d)));
        this.namespaces.set(ns, new k8s.core.v1.Namespace(`${name}-namespace-${ns}`, { metadata: { name: ns } }, { parent: this, provider: args.provider, dependsOn: waitFor(common) }));
      }
      // Important: a dependency is the objects an add-on applied, not only its install resource. The install is a
      // component the provider constructs; its registration completes before its objects are applied, so waiting on
      // it alone would start a dependent early, and `--continue-on-error` would apply it after its dependency failed.
      const dependsOn: pulumi.Input<pulumi.Resource>[] = [...waitFor(addon.dependsOn), ...(ns !== undefined ? [this.namespaces.get(ns)!] : [])];
      const component = new Addon(`${name}-${addon.name}`, { addon, provider: args.provider, dependsOn, secretValues: args.secretValues === true }, { parent: this });
      this.installs.set(addon.name, component.install);
    }
    this.registerOutputs({});
  }

  private installOf(name: string): AddonInstall {
    const install = this.installs.get(name);
    if (!install) throw new Error(`add-on ${name} is not declared before its dependents (addons must come in install order)`);
    return install;
  }
}

/** One add-on: the component its install resource (and through it every object it renders) belongs to. */
export class Addon extends pulumi.ComponentResource {
  readonly install: AddonInstall;

  constructor(name: string, args: { addon: AddonConfig; provider: k8s.Provider; dependsOn: pulumi.Input<pulumi.Resource>[]; secretValues: boolean }, opts?: pulumi.ComponentResourceOptions) {
    super("kubeadm-ha:cluster:Addon", name, {}, opts);
    this.install = installAddon(name, args.addon, args.secretValues, { parent: this, provider: args.provider, dependsOn: args.dependsOn });
    this.registerOutputs({});
  }
}

/**
 * The objects an install applied, as a dependency: the provider resolves `resources` once they are all applied
 * (gatherExplicitDependencies flattens an Output of resources in dependsOn).
 */
function appliedObjects(install: AddonInstall): pulumi.Input<pulumi.Resource> {
  return install.resources as unknown as pulumi.Input<pulumi.Resource>;
}

/**
 * One add-on's install resource, named `name` (`addons-<add-on>`): the provider names the objects it renders after
 * it (`addons-<add-on>:<namespace>/<object>`). A chart's release name is the add-on's name.
 */
export function installAddon(name: string, addon: AddonConfig, secretValues: boolean, opts: pulumi.CustomResourceOptions): AddonInstall {
  const source: AddonSource = addon.source;
  switch (source.kind) {
    case "helm-repository":
    case "helm-path": {
      const values = secretValues ? pulumi.secret(source.values) : source.values;
      const valueYamlFiles = source.valuesFiles.map((f) => new pulumi.asset.FileAsset(f));
      const chart =
        source.kind === "helm-path"
          ? { chart: source.path }
          : source.repo.startsWith("oci://")
            ? { chart: `${source.repo}/${source.chart}`, version: source.version }
            : { chart: source.chart, version: source.version, repositoryOpts: { repo: source.repo } };
      return new k8s.helm.v4.Chart(name, { ...chart, name: addon.name, namespace: source.namespace, values, valueYamlFiles }, opts);
    }
    case "kustomize":
      return new k8s.kustomize.v2.Directory(name, { directory: source.directory, ...(source.namespace !== undefined ? { namespace: source.namespace } : {}) }, opts);
    case "manifests":
      return new k8s.yaml.v2.ConfigGroup(name, { files: source.files }, opts);
    default: {
      const never: never = source;
      throw new Error(`unknown add-on source ${JSON.stringify(never)}`);
    }
  }
}
