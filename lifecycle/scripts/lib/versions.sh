# Version observation and the skew guard shared by the upgrade steps; the builder sets VERSION, TARGET_MAJOR,
# TARGET_MINOR, TARGET_PATCH (the target), KUBECONFIG_FILE and API_VERSION_TIMEOUT before this fragment.
# shellcheck shell=bash

# skip WHY: the step finds its work already done (on a fresh cluster: everything), says so and ends successfully.
skip() {
  log "$*: nothing to do"
  log "done"
  exit 0
}

# semver_parts VERSION: "v1.35.9", "1.35.9-1.1" or "v1.35.9+abc" -> "1 35 9"; fails on anything else.
semver_parts() {
  local v=${1#v}
  [[ $v =~ ^([0-9]+)\.([0-9]+)\.([0-9]+) ]] || return 1
  printf '%s %s %s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}"
}

# check_skew CURRENT WHAT: ends the step with a refusal unless going from CURRENT to the target is no change, a
# newer patch of the same minor, or the next minor. Kubernetes supports neither downgrades nor skipped minors.
check_skew() {
  local current=$1 what=$2 parts major minor patch
  parts=$(semver_parts "$current") || die "cannot read the version of $what: '$current'"
  read -r major minor patch <<<"$parts"
  if [ "$major" != "$TARGET_MAJOR" ]; then
    die "refusing the upgrade: $what is at $current and the target v$VERSION is another major version"
  fi
  if [ "$TARGET_MINOR" -lt "$minor" ] || { [ "$TARGET_MINOR" -eq "$minor" ] && [ "$TARGET_PATCH" -lt "$patch" ]; }; then
    die "refusing to downgrade: $what is at $current and the target v$VERSION is older (kubeadm cannot downgrade, and restoring an etcd snapshot brings back data, not older binaries): set kubernetesVersion back to $current"
  fi
  if [ "$TARGET_MINOR" -gt $((minor + 1)) ]; then
    die "refusing to skip a minor: $what is at $current and the target is v$VERSION; upgrade one minor at a time (to v$major.$((minor + 1)).x first)"
  fi
}

# json_git_version SECTION: the gitVersion of SECTION (serverVersion, clientVersion) of `kubectl version -o json`
# on stdin; empty when the section is absent (the server was unreachable).
json_git_version() {
  tr -d '\n' | sed -n -E "s/.*\"$1\"[^}]*\"gitVersion\"[[:space:]]*:[[:space:]]*\"([^\"]*)\".*/\1/p"
}

# read_cluster_version: sets CLUSTER_VERSION to the apiserver's version (through the load balancer: any apiserver).
read_cluster_version() {
  CLUSTER_VERSION=$(timeout 30 kubectl --kubeconfig "$KUBECONFIG_FILE" --request-timeout=20s version -o json 2>/dev/null |
    json_git_version serverVersion) || true
  [ -n "$CLUSTER_VERSION" ]
}

# check_cluster_skew: the skew guard on the node. The cluster's version against the target, before anything runs.
check_cluster_skew() {
  CLUSTER_VERSION=""
  wait_until "$API_VERSION_TIMEOUT" "the cluster's version (kubectl version through $KUBECONFIG_FILE)" read_cluster_version
  check_skew "$CLUSTER_VERSION" "the cluster"
  log "cluster at $CLUSTER_VERSION; target v$VERSION"
}
