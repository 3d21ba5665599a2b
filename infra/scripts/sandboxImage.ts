// containerd's sandbox (pause) image, kept at the one the node's kubeadm names for its Kubernetes version. containerd's
// default config names its own (containerd 1.7: pause:3.8), which kubeadm's preflight reports as inconsistent and
// which a node that only reaches the cluster's image repository cannot pull. Bash shared by the prepare step and the
// kubelet upgrade (a new minor brings a new pause tag).

/** Where containerd reads per-registry host configuration (hosts.toml) when its config names it. */
export const containerdCertsDir = "/etc/containerd/certs.d";

/**
 * Functions: `kubeadm_pause_image [REPOSITORY]` (stdout: the pause image `kubeadm config images list` names for the
 * installed kubeadm's version, from REPOSITORY when given), `sandbox_image FILE` (the image containerd's config FILE
 * names), `set_sandbox_image FILE IMAGE` (fails when FILE has no sandbox image option), and `refresh_sandbox_image`:
 * the live config's image moved to the installed kubeadm's pause tag (its repository kept), containerd restarted when
 * that changed it. Needs log, die, R.
 */
export const sandboxImageBash = String.raw`
kubeadm_pause_image() {
  local version image
  version=$(kubeadm version -o short 2>/dev/null) || return 1
  image=$(timeout 60 kubeadm config images list --kubernetes-version "$version" ${"$"}{1:+--image-repository "$1"} 2>/dev/null |
    grep -E '/pause:[^[:space:]]+$' | head -n 1) || return 1
  [ -n "$image" ] && printf '%s' "$image"
}
# containerd 1.7: sandbox_image = "..." (CRI plugin); containerd 2.x: sandbox = '...' (pinned_images).
sandbox_image() {
  sed -n -E "s/^[[:space:]]*sandbox(_image)?[[:space:]]*=[[:space:]]*[\"']([^\"']*)[\"'].*/\2/p" "$1" | head -n 1
}
set_sandbox_image() {
  local file=$1 image=$2
  if grep -Eq '^[[:space:]]*sandbox_image[[:space:]]*=' "$file"; then
    sed -i -E "s#^([[:space:]]*sandbox_image[[:space:]]*=[[:space:]]*).*#\1\"$image\"#" "$file"
  elif grep -Eq '^[[:space:]]*sandbox[[:space:]]*=' "$file"; then
    sed -i -E "s#^([[:space:]]*sandbox[[:space:]]*=[[:space:]]*).*#\1'$image'#" "$file"
  else
    return 1
  fi
  [ "$(sandbox_image "$file")" = "$image" ]
}
refresh_sandbox_image() {
  local conf="$R/etc/containerd/config.toml" current pause wanted
  [ -f "$conf" ] || return 0
  current=$(sandbox_image "$conf")
  [ -n "$current" ] || return 0
  # Only its tag is used: the repository stays the one prepare set.
  pause=$(kubeadm_pause_image "") || die "kubeadm config images list names no pause image"
  wanted="${"$"}{current%:*}:${"$"}{pause##*:}"
  [ "$current" != "$wanted" ] || return 0
  log "containerd's sandbox image: $current -> $wanted (the pause image of kubeadm $(kubeadm version -o short 2>/dev/null))"
  set_sandbox_image "$conf" "$wanted" || die "could not set the sandbox image in $conf"
  timeout 120 systemctl restart containerd 2>&1 | log_output || die "could not restart containerd"
}
`;
