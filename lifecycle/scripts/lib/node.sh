# A node as the cluster sees it, read with the admin kubeconfig from a control plane. The builder sets ADMIN_CONF
# and TARGET (the node the step is about) before this fragment.
# shellcheck shell=bash

# node_field JSONPATH: one field of TARGET's Node object.
node_field() {
  timeout 30 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=20s get node "$TARGET" -o "jsonpath=$1"
}

# target_kubelet_version: the kubelet version TARGET reports ("v1.35.9"); ends the step when it cannot be read.
target_kubelet_version() {
  local v
  v=$(node_field '{.status.nodeInfo.kubeletVersion}') || die "cannot read node $TARGET through $ADMIN_CONF"
  [ -n "$v" ] || die "node $TARGET reports no kubelet version"
  printf '%s\n' "$v"
}

node_cordoned() {
  [ "$(node_field '{.spec.unschedulable}')" = true ]
}

# The annotation a maintenance step puts on its node: while it is there, no other step uncordons the node.
MAINTENANCE_ANNOTATION=kubeadm-ha.io/maintenance
# in_maintenance: TARGET is held in maintenance (config `maintenance`).
in_maintenance() {
  [ "$(node_field '{.metadata.annotations.kubeadm-ha\.io/maintenance}' 2>/dev/null || true)" = true ]
}
# set_maintenance true|false: marks TARGET as held in maintenance, or releases it.
set_maintenance() {
  if [ "$1" = true ]; then
    timeout 60 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=30s annotate --overwrite node "$TARGET" "$MAINTENANCE_ANNOTATION=true" >/dev/null
  else
    timeout 60 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=30s annotate node "$TARGET" "$MAINTENANCE_ANNOTATION-" >/dev/null
  fi
}

# pod_healthy NAME: the kube-system pod NAME is Running, Ready and runs the target's image tag.
pod_healthy() {
  local got
  got=$(timeout 30 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=20s -n kube-system get pod "$1" \
    -o 'jsonpath={.status.phase}{" "}{.status.conditions[?(@.type=="Ready")].status}{" "}{.spec.containers[0].image}' 2>/dev/null) || return 1
  case $got in
    "Running True "*":v$VERSION") return 0 ;;
    *) return 1 ;;
  esac
}

# node_exists: TARGET has a Node object (a NotFound is an answer, not an error). Ends the step when the cluster cannot
# be asked (three bounded attempts).
node_exists() {
  local out
  out=$(retry 3 5 timeout 30 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=20s get node "$TARGET" \
    --ignore-not-found -o name) || die "cannot ask the cluster about node $TARGET through $ADMIN_CONF"
  [ -n "$out" ]
}

# node_evictable_pods: what a drain of TARGET would still evict, one namespace/name a line: pods that have not
# finished, except DaemonSet pods (drain --ignore-daemonsets leaves them) and static pods (their mirror pods are
# owned by the Node). Fails when the cluster cannot be asked.
node_evictable_pods() {
  local out
  out=$(timeout 30 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=20s get pods --all-namespaces \
    --field-selector "spec.nodeName=$TARGET,status.phase!=Succeeded,status.phase!=Failed" \
    -o 'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {.metadata.ownerReferences[0].kind}{"\n"}{end}') ||
    return 1
  printf '%s\n' "$out" | awk 'NF > 0 && $2 != "DaemonSet" && $2 != "Node" { print $1 }'
}
