# The Kubernetes packages of one node: observe, switch the apt source to the target minor, install exact pins.
# The builder sets VERSION, PIN, REPO_URL, KEY_URL, SOURCE_LINE, KEYRING, SOURCE_LIST and defines apt_get first.
# shellcheck shell=bash

# Installed versions ("v1.35.9"); empty when the binary is missing.
installed_kubeadm() { kubeadm version -o short 2>/dev/null || true; }
installed_kubelet() { kubelet --version 2>/dev/null | sed -n -E 's/^Kubernetes (v[^[:space:]]+).*/\1/p' || true; }
installed_kubectl() { kubectl version --client -o json 2>/dev/null | json_git_version clientVersion || true; }

# held PACKAGE: the package is on hold (apt upgrade never moves it). grep reads all input: with -q it could exit
# first and fail the pipeline (pipefail) on apt-mark's SIGPIPE.
held() { apt-mark showhold 2>/dev/null | grep -x "$1" >/dev/null; }

# hold_all PACKAGE...: puts on hold those not yet held.
hold_all() {
  local p
  for p in "$@"; do
    if ! held "$p"; then apt-mark hold "$p" 2>&1 | log_output; fi
  done
}

# ensure_kubernetes_source: points apt at the target minor's repository (pkgs.k8s.io, or packages.repository; each minor has its own
# repository and key). A patch bump finds the line already there and changes nothing. The key is replaced before
# the source line, so a failure in between leaves the old minor's source and the next run does both again.
ensure_kubernetes_source() {
  local tmp
  if [ -f "$SOURCE_LIST" ] && [ "$(cat "$SOURCE_LIST")" = "$SOURCE_LINE" ]; then
    log "apt source already $REPO_URL"
    return 0
  fi
  log "switching the apt source to $REPO_URL (the target's minor)"
  install -d -m 0755 "$(dirname "$KEYRING")" "$(dirname "$SOURCE_LIST")"
  tmp=$(mktemp "$KEYRING.new.XXXXXX")
  if ! retry 3 5 curl -fsSL --connect-timeout 10 --max-time 60 -o "$tmp.asc" "$KEY_URL"; then
    rm -f "$tmp" "$tmp.asc"
    die "could not download $KEY_URL"
  fi
  gpg --batch --yes --dearmor -o "$tmp" "$tmp.asc"
  rm -f "$tmp.asc"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$KEYRING"
  tmp=$(mktemp "$SOURCE_LIST.new.XXXXXX")
  printf '%s\n' "$SOURCE_LINE" >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$SOURCE_LIST"
  log "wrote $SOURCE_LIST"
}

# install_pinned PACKAGE...: unhold, install exactly the target version, hold again.
install_pinned() {
  local p pins=()
  for p in "$@"; do pins+=("$p=$PIN"); done
  ensure_kubernetes_source
  apt-mark unhold "$@" 2>&1 | log_output
  retry 3 10 apt_get update || die "apt-get update failed"
  log "installing ${pins[*]}"
  retry 2 10 apt_get install "${pins[@]}" || die "apt-get install ${pins[*]} failed"
  apt-mark hold "$@" 2>&1 | log_output
}

# upgrade_kubeadm_package: kubeadm at the target and held; skipped when it already is.
upgrade_kubeadm_package() {
  local found
  found=$(installed_kubeadm)
  if [ "$found" = "v$VERSION" ]; then
    hold_all kubeadm
    log "kubeadm already v$VERSION"
    return 0
  fi
  if [ -n "$found" ]; then check_skew "$found" "kubeadm on this node"; fi
  install_pinned kubeadm
  found=$(installed_kubeadm)
  [ "$found" = "v$VERSION" ] || die "kubeadm reports '$found' after the install, expected v$VERSION"
  log "kubeadm upgraded to $found and held"
}

# Present from the moment the kubelet package may change until the kubelet has restarted on it: a run that finds
# it restarts the kubelet even though the packages are already at the target.
KUBELET_RESTART_PENDING="$R/etc/kubeadm-ha/kubelet-restart-pending"

# kubelet_at_target: kubelet and kubectl are the target, held, and the kubelet runs it.
kubelet_at_target() {
  [ "$(installed_kubelet)" = "v$VERSION" ] && [ "$(installed_kubectl)" = "v$VERSION" ] &&
    [ ! -e "$KUBELET_RESTART_PENDING" ] && held kubelet && held kubectl
}

# upgrade_kubelet_packages: kubelet and kubectl at the target and held, containerd's sandbox image at the target's pause
# image, daemon-reload, kubelet restarted.
upgrade_kubelet_packages() {
  local found
  found=$(installed_kubelet)
  if [ -n "$found" ] && [ "$found" != "v$VERSION" ]; then check_skew "$found" "the kubelet on this node"; fi
  if [ "$found" != "v$VERSION" ] || [ "$(installed_kubectl)" != "v$VERSION" ]; then
    install -d -m 0700 "$(dirname "$KUBELET_RESTART_PENDING")"
    : >"$KUBELET_RESTART_PENDING"
    install_pinned kubelet kubectl
  else
    hold_all kubelet kubectl
  fi
  found=$(installed_kubelet)
  [ "$found" = "v$VERSION" ] || die "kubelet reports '$found' after the install, expected v$VERSION"
  if [ -e "$KUBELET_RESTART_PENDING" ]; then
    # A new minor's kubeadm names a new pause image: containerd's sandbox image follows it (the node is drained).
    refresh_sandbox_image
    log "restarting the kubelet on $found"
    timeout 60 systemctl daemon-reload 2>&1 | log_output || die "systemctl daemon-reload failed or hung (60 s)"
    timeout 120 systemctl restart kubelet 2>&1 | log_output || die "the kubelet did not restart within 120 s"
    rm -f "$KUBELET_RESTART_PENDING"
  fi
  log "kubelet and kubectl at v$VERSION, held, kubelet restarted"
}
