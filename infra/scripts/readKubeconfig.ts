// Step "read-kubeconfig": hands the cluster's admin kubeconfig to the program. Pure: arguments in, bash out.
import { nodePaths, stepTimeouts } from "../defaults";
import { nodeScript, shellQuote } from "./common";

/**
 * Step "read-kubeconfig" (first control plane): waits for admin.conf, then prints it. Stdout is exactly the file
 * (the program stores it as a secret output); progress goes to stderr.
 */
export function readKubeconfigScript(args: { node: string }): string {
  const body = `
ADMIN_CONF="$R"${shellQuote(nodePaths.adminKubeconfig)}
wait_until ${stepTimeouts.kubeadmInit} "$ADMIN_CONF" test -s "$ADMIN_CONF"
cat "$ADMIN_CONF"
`;
  return nodeScript({ node: args.node, step: "read-kubeconfig" }, body);
}
