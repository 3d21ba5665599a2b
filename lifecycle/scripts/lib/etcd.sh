# etcd health before a control plane changes. The builder defines etcd_health (stacked: through each member's pod;
# external: with the apiserver's client certificate) and sets ETCD_HEALTH_TIMEOUT and ETCD_WHAT.
# shellcheck shell=bash

# check_etcd: waits (bounded) until every member reports healthy; on timeout ends the step with etcd's output.
check_etcd() {
  local deadline=$((SECONDS + ETCD_HEALTH_TIMEOUT)) out
  until out=$(etcd_health 2>&1); do
    if [ "$SECONDS" -ge "$deadline" ]; then
      printf '%s\n' "$out" | log_output
      die "etcd ($ETCD_WHAT) is not healthy after ${ETCD_HEALTH_TIMEOUT}s (output above): changing a control plane now could cost etcd its quorum"
    fi
    sleep "${KUBEADM_HA_POLL_SECONDS:-5}"
  done
  printf '%s\n' "$out" | log_output
  log "etcd healthy: $ETCD_WHAT"
}
