# Helpers shared by every node step; nodeScript() inlines this file after NODE and STEP are set.
# shellcheck shell=bash
# R prefixes every path the steps touch: empty on real nodes, a scratch root in tests.
R="${KUBEADM_HA_ROOT:-}"
# Progress goes to stderr: stdout is reserved for what a step returns to the program (a kubeconfig, a hash).
log() { printf '[%s] %s: %s\n' "$NODE" "$STEP" "$*" >&2; }
die() {
  printf '[%s] %s: ERROR: %s\n' "$NODE" "$STEP" "$*" >&2
  exit 1
}
# retry ATTEMPTS DELAY COMMAND...: runs COMMAND until it succeeds, at most ATTEMPTS times.
retry() {
  local attempts=$1 delay=$2 n=1
  shift 2
  until "$@"; do
    if [ "$n" -ge "$attempts" ]; then return 1; fi
    log "attempt $n/$attempts of '$1' failed; retrying in ${delay}s"
    n=$((n + 1))
    sleep "$delay"
  done
}
# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds or SECONDS pass, then fails the step.
wait_until() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then die "timed out after ${limit}s waiting for $what"; fi
    sleep "${KUBEADM_HA_POLL_SECONDS:-5}"
  done
}
# write_secret_file PATH: stores stdin at PATH, root-only, replaced atomically; the content never touches argv.
write_secret_file() {
  local path=$1
  install -d -m 0700 "$(dirname "$path")"
  (umask 077 && cat >"$path.tmp")
  chmod 0600 "$path.tmp"
  mv -f "$path.tmp" "$path"
}
# log_output: logs each line of stdin (a command's output) with the node and step prefix; keeps stdout free.
log_output() {
  local line
  while IFS= read -r line || [ -n "$line" ]; do log "$line"; done
}
# redact_kubeadm: filters kubeadm's output: drops the join commands, the uploaded certificate key and anything
# shaped like a bootstrap token or a 64-hex key, which would grant access to the cluster from the pulumi log.
redact_kubeadm() {
  sed -u -E \
    -e '/Using certificate key:/{n;d;}' \
    -e '/kubeadm join|--token|--certificate-key|--discovery-token-ca-cert-hash/d' \
    -e 's/[a-z0-9]{6}\.[a-z0-9]{16}/<redacted>/g' \
    -e 's/[0-9a-fA-F]{64}/<redacted>/g'
}
# fetch_release_tarball URL SUMS_URL NAME DIR: downloads the release file NAME from URL into DIR (bounded, retried)
# and refuses it unless its sha256 is the one the release's SHA256SUMS (SUMS_URL) lists for NAME.
fetch_release_tarball() {
  local url=$1 sums_url=$2 name=$3 dir=$4 expected actual
  log "downloading $url"
  retry 5 10 curl -fsSL --proto '=https' --connect-timeout 10 --max-time 900 -o "$dir/$name" "$url" || die "could not download $url"
  retry 5 10 curl -fsSL --proto '=https' --connect-timeout 10 --max-time 900 -o "$dir/SHA256SUMS" "$sums_url" || die "could not download $sums_url"
  expected=$(awk -v f="$name" '$2 == f || $2 == "*" f { print $1; exit }' "$dir/SHA256SUMS")
  [[ $expected =~ ^[0-9a-f]{64}$ ]] || die "the release's SHA256SUMS lists no checksum for $name"
  actual=$(sha256sum "$dir/$name" | cut -d' ' -f1)
  if [ "$actual" != "$expected" ]; then
    die "checksum mismatch for $name: SHA256SUMS says $expected, the download is $actual; refusing to install"
  fi
  log "checksum verified ($expected)"
}
# ca_cert_hash FILE: the sha256 of a CA certificate's public key, as kubeadm's --discovery-token-ca-cert-hash wants it.
ca_cert_hash() {
  openssl x509 -pubkey -noout -in "$1" | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1
}
