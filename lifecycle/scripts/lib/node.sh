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
