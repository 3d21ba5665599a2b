// Step "wait-nodes-ready": the cluster-level gate after bootstrap. Pure: arguments in, bash out.
import { nodePaths, stepTimeouts } from "../defaults";
import { nodeScript, shellQuote } from "./common";

/** A Kubernetes Node name (a DNS subdomain): also keeps the names safe as awk and log text. */
const nodeNamePattern = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * Step "wait-nodes-ready", run on the first control plane with admin.conf: waits until every expected node is
 * registered and Ready. On timeout it fails naming each node that is missing or NotReady.
 */
export function waitForNodesScript(args: {
  node: string;
  expectedNodes: string[];
  /** Bound of the whole wait in seconds. Default: stepTimeouts.nodeReady. */
  timeoutSeconds?: number;
}): string {
  if (args.expectedNodes.length === 0) throw new Error("waitForNodesScript: expectedNodes is empty");
  const bad = args.expectedNodes.filter((n) => !nodeNamePattern.test(n));
  if (bad.length > 0) throw new Error(`waitForNodesScript: not Kubernetes node names: ${bad.join(", ")}`);
  const limit = args.timeoutSeconds ?? stepTimeouts.nodeReady;
  if (!Number.isInteger(limit) || limit < 0) throw new Error(`waitForNodesScript: timeoutSeconds must be a whole number >= 0`);
  const body = `
ADMIN_CONF="$R"${shellQuote(nodePaths.adminKubeconfig)}
EXPECTED=(${args.expectedNodes.map(shellQuote).join(" ")})
LIMIT=${limit}

# Prints "name status" per registered node (status: the Ready condition, True/False/Unknown).
list_nodes() {
  timeout 30 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=20s get nodes \\
    -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'
}

deadline=$((SECONDS + LIMIT))
last=""
while :; do
  listed=1
  nodes=$(list_nodes 2>/dev/null) || listed=0
  pending=()
  for name in "\${EXPECTED[@]}"; do
    status=$(printf '%s\\n' "$nodes" | awk -v n="$name" '$1 == n { print ($2 == "" ? "Unknown" : $2) }')
    case $status in
      True) ;;
      "") pending+=("$name (not registered)") ;;
      *) pending+=("$name (NotReady: Ready=$status)") ;;
    esac
  done
  if [ "\${#pending[@]}" -eq 0 ]; then break; fi
  summary=$(printf '%s, ' "\${pending[@]}")
  summary=\${summary%, }
  if [ "$listed" = 0 ]; then summary="could not list nodes through $ADMIN_CONF; waiting for: $summary"; fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    die "timed out after ${limit}s; not Ready: $summary"
  fi
  if [ "$summary" != "$last" ]; then
    log "waiting for: $summary"
    last=$summary
  fi
  sleep "\${KUBEADM_HA_POLL_SECONDS:-5}"
done
log "all \${#EXPECTED[@]} nodes Ready: \${EXPECTED[*]}"
`;
  return nodeScript({ node: args.node, step: "wait-nodes-ready" }, body);
}
