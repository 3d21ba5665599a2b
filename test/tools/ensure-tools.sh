#!/usr/bin/env bash
# Makes the project-local test tools available under <project>/.tools/:
#   .tools/bin/shellcheck             Debian bookworm shellcheck
#   .tools/bin/haproxy                Debian bookworm haproxy (for `haproxy -c -f`)
#   .tools/bin/openssl                Debian bookworm openssl (tests never use whatever openssl is on PATH)
#   .tools/etcd-3.4/bin/{etcd,etcdctl}          Debian bookworm etcd-server/etcd-client 3.4
#   .tools/etcd-3.5/bin/{etcd,etcdctl,etcdutl}  Debian trixie etcd-server/etcd-client 3.5
#   .tools/bin/sshd                   Debian bookworm openssh-server (the real SSH test: bastion + node on loopback)
#   .tools/bin/keepalived             Debian bookworm keepalived (for `keepalived --config-test`)
#   .tools/bin/containerd             Debian bookworm containerd (for `containerd config default`: the config format the
#                                     prepare step edits)
# Packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x`; nothing is ever installed
# system-wide (a test tool installed by hand makes a machine green that a fresh one is not): an unpacked binary that
# cannot run is an error. Tests resolve every tool through test/support/tools.ts, which only returns paths under
# .tools/ (test/testTools.test.ts asserts it). Idempotent: when everything is present, a run touches no network and
# returns at once.
#
# Usage: bash test/tools/ensure-tools.sh [--force]
#   --force            fetch everything again
#   TOOLS_DEB_DIR=DIR  use PACKAGE_*.deb files found in DIR instead of downloading them (offline installs)
set -euo pipefail

SELF=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)/$(basename -- "${BASH_SOURCE[0]}")
ROOT=$(cd -- "$(dirname -- "$SELF")/../.." && pwd -P)
TOOLS=$ROOT/.tools
STAMPS=$TOOLS/.stamps
CODENAME=bookworm
NEWER=trixie
ALL_TOOLS=(openssl shellcheck haproxy etcd-3.4 etcd-3.5 sshd keepalived containerd)

say() { printf 'ensure-tools: %s\n' "$*"; }
err() { printf 'ensure-tools: %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------------------------
# Presence checks (the fast path: stat calls only)
# ---------------------------------------------------------------------------------------------------------------
tool_present() {
  local f files=()
  case $1 in
    openssl | shellcheck | haproxy) files=("$TOOLS/bin/$1") ;;
    sshd | keepalived | containerd) files=("$TOOLS/bin/$1") ;;
    etcd-3.4) files=("$TOOLS/etcd-3.4/bin/etcd" "$TOOLS/etcd-3.4/bin/etcdctl") ;;
    etcd-3.5) files=("$TOOLS/etcd-3.5/bin/etcd" "$TOOLS/etcd-3.5/bin/etcdctl" "$TOOLS/etcd-3.5/bin/etcdutl") ;;
    *) return 1 ;;
  esac
  [[ -f $STAMPS/$1 ]] || return 1
  for f in "${files[@]}"; do [[ -x $f ]] || return 1; done
}

# ---------------------------------------------------------------------------------------------------------------
# apt helpers (used by the per-tool fetch, which runs in a child bash so that `set -e` applies inside it)
# ---------------------------------------------------------------------------------------------------------------
APT_COMMON=(-q -y)
if [[ $EUID -eq 0 ]]; then APT_COMMON+=(-o APT::Sandbox::User=root); fi

# The Debian mirror that the machine's own apt sources use for $CODENAME (one-line and deb822 formats).
detect_mirror() {
  local files=() f
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && files+=("$f")
  done
  ((${#files[@]})) || return 1
  awk -v want="$CODENAME" '
    function flush() {
      if (!found && isdeb && enabled && uri ~ /^https?:\/\// && (" " suites " ") ~ (" " want " ")) { print uri; found = 1 }
      uri = ""; suites = ""; isdeb = 0; enabled = 1
    }
    BEGIN { enabled = 1 }
    FNR == 1 { flush(); fmt = (FILENAME ~ /\.sources$/) ? "822" : "line" }
    found { exit }
    fmt == "line" {
      line = $0; sub(/#.*/, "", line); gsub(/\[[^]]*\]/, "", line)
      n = split(line, a, " ")
      if (n >= 3 && a[1] == "deb" && a[3] == want && a[2] ~ /^https?:\/\//) { print a[2]; found = 1; exit }
      next
    }
    /^[ \t]*#/ { next }
    /^[ \t]*$/ { flush(); next }
    {
      key = tolower($1); sub(/:$/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
      if (key == "types") isdeb = ((" " val " ") ~ / deb /)
      else if (key == "uris") { split(val, u, " "); uri = u[1] }
      else if (key == "suites") suites = val
      else if (key == "enabled") enabled = (tolower(val) != "no")
    }
    END { flush() }
  ' "${files[@]}" | head -n 1
}

# deb_get DESTDIR LOG APTOPTS... -- PKG...: put PKG_*.deb files into DESTDIR (TOOLS_DEB_DIR first, else apt-get
# download). DEB_VER_PREFIX restricts which files of TOOLS_DEB_DIR match (e.g. "3.5.").
deb_get() {
  local dest=$1 log=$2; shift 2
  local opts=() pkgs=() p f need=()
  while (($#)); do
    if [[ $1 == -- ]]; then shift; pkgs=("$@"); break; fi
    opts+=("$1"); shift
  done
  for p in "${pkgs[@]}"; do
    f=""
    if [[ -n ${TOOLS_DEB_DIR:-} ]]; then
      f=$(find "$TOOLS_DEB_DIR" -maxdepth 1 -name "${p}_${DEB_VER_PREFIX:-}*.deb" | sort -V | tail -n 1)
    fi
    if [[ -n $f ]]; then cp "$f" "$dest/"; else need+=("$p"); fi
  done
  ((${#need[@]})) || return 0
  (cd "$dest" && apt-get "${APT_COMMON[@]}" ${opts[@]+"${opts[@]}"} download "${need[@]}") >>"$log" 2>&1
}

deb_file() { find "$1" -maxdepth 1 -name "${2}_*.deb" | head -n 1; }

pkg_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

# Library packages that DEB depends on and that are not installed on this machine (first alternative of each).
missing_lib_deps() {
  dpkg-deb -f "$1" Depends Pre-Depends | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/^ *//' -e 's/ *$//' \
    | { grep -E '^lib' || true; } | sort -u | while read -r p; do
      pkg_installed "$p" || echo "$p"
    done
}

# fetch_bookworm_pkg WORK PKG: download PKG (and, recursively, library packages it needs that are not installed)
# from the machine's own apt sources into WORK/debs and unpack them all into WORK/root.
# Sets FETCHED_VERSION and FETCHED_LIBS. Called as a condition, so every step checks its own status.
fetch_bookworm_pkg() {
  local work=$1 pkg=$2 log=$1/apt.log
  mkdir -p "$work/debs" "$work/root" || return 1
  if ! deb_get "$work/debs" "$log" -- "$pkg"; then
    # Lists missing or stale: refresh them once (needs root) and try again.
    apt-get "${APT_COMMON[@]}" update >>"$log" 2>&1 || return 1
    deb_get "$work/debs" "$log" -- "$pkg" || return 1
  fi
  local queue=("$pkg") seen=" $pkg " libs=() p d deps
  while ((${#queue[@]})); do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    deps=$(missing_lib_deps "$(deb_file "$work/debs" "$p")") || return 1
    for d in $deps; do
      [[ $seen == *" $d "* ]] && continue
      seen+="$d "
      deb_get "$work/debs" "$log" -- "$d" || return 1
      libs+=("$d")
      queue+=("$d")
    done
  done
  for d in "$work"/debs/*.deb; do dpkg-deb -x "$d" "$work/root" || return 1; done
  FETCHED_VERSION=$(dpkg-deb -f "$(deb_file "$work/debs" "$pkg")" Version) || return 1
  FETCHED_LIBS=${libs[*]:-}
}

# Writes .tools/bin/NAME: a relative symlink to the unpacked binary, or (when libraries were unpacked next to it)
# a wrapper that sets LD_LIBRARY_PATH to the unpacked library directories.
link_or_wrap() {
  local name=$1 dir=$2 relbin=$3 extra_libs=$4 libdirs
  mkdir -p "$TOOLS/bin"
  rm -f "$TOOLS/bin/$name"
  if [[ -z $extra_libs ]]; then
    ln -s "../$dir/$relbin" "$TOOLS/bin/$name"
    return
  fi
  local d
  libdirs=""
  while read -r d; do
    libdirs+="${libdirs:+:}\$here/$dir/${d#./}"
  done < <(cd "$TOOLS/$dir" && find . -name '*.so*' -printf '%h\n' | sort -u)
  cat >"$TOOLS/bin/$name" <<EOF
#!/bin/sh
# Generated by test/tools/ensure-tools.sh: runs the unpacked $name with its unpacked libraries.
here=\$(cd "\$(dirname "\$0")/.." && pwd)
LD_LIBRARY_PATH="$libdirs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$here/$dir/$relbin" "\$@"
EOF
  chmod +x "$TOOLS/bin/$name"
}

# ---------------------------------------------------------------------------------------------------------------
# Per-tool fetchers
# ---------------------------------------------------------------------------------------------------------------
# fetch_simple NAME PKG RELBIN VERSION-ARGS...
fetch_simple() {
  local name=$1 pkg=$2 relbin=$3; shift 3
  local work; work=$(mktemp -d "$TOOLS/.work.$name.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  FETCHED_VERSION="" FETCHED_LIBS=""
  if fetch_bookworm_pkg "$work" "$pkg" && [[ -x $work/root/$relbin ]]; then
    rm -rf "${TOOLS:?}/pkgs/$name"
    mkdir -p "$TOOLS/pkgs"
    mv "$work/root" "$TOOLS/pkgs/$name"
    link_or_wrap "$name" "pkgs/$name" "$relbin" "$FETCHED_LIBS"
    if "$TOOLS/bin/$name" "$@" >>"$work/apt.log" 2>&1; then
      echo "$pkg $FETCHED_VERSION" >"$STAMPS/$name"
      say "$name: $pkg $FETCHED_VERSION ($CODENAME${FETCHED_LIBS:+, with unpacked $FETCHED_LIBS}) -> .tools/bin/$name"
      return 0
    fi
    err "$name: the unpacked $pkg does not run here"
  fi
  tail -n 8 "$work/apt.log" >&2 || true
  return 1
}

# fetch_with_libs NAME PKG RELBIN VERSION-ARGS...: fetch_simple for packages with many library dependencies
# (keepalived pulls in seven). The library closure that this machine lacks comes from one `apt-get -s install`
# (a simulation: no network, nothing installed) and is downloaded in one `apt-get download`: one network round trip
# instead of one per library (~5 s each here).
fetch_with_libs() {
  local name=$1 pkg=$2 relbin=$3; shift 3
  local work; work=$(mktemp -d "$TOOLS/.work.$name.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  local log=$work/apt.log sim libs=() d
  mkdir -p "$work/debs" "$work/root"
  FETCHED_VERSION="" FETCHED_LIBS=""
  if ! sim=$(apt-get "${APT_COMMON[@]}" -s install --no-install-recommends "$pkg" 2>>"$log"); then
    apt-get "${APT_COMMON[@]}" update >>"$log" 2>&1 || true
    sim=$(apt-get "${APT_COMMON[@]}" -s install --no-install-recommends "$pkg" 2>>"$log") || sim=""
  fi
  while read -r d; do libs+=("$d"); done < <(printf '%s\n' "$sim" | awk '$1 == "Inst" && $2 ~ /^lib/ { print $2 }')
  if [[ -n $sim ]] && deb_get "$work/debs" "$log" -- "$pkg" ${libs[@]+"${libs[@]}"}; then
    for d in "$work"/debs/*.deb; do dpkg-deb -x "$d" "$work/root"; done
    FETCHED_VERSION=$(dpkg-deb -f "$(deb_file "$work/debs" "$pkg")" Version)
    FETCHED_LIBS=${libs[*]:-}
  fi
  if [[ -n $FETCHED_VERSION && -x $work/root/$relbin ]]; then
    rm -rf "${TOOLS:?}/pkgs/$name"
    mkdir -p "$TOOLS/pkgs"
    mv "$work/root" "$TOOLS/pkgs/$name"
    link_or_wrap "$name" "pkgs/$name" "$relbin" "$FETCHED_LIBS"
    if "$TOOLS/bin/$name" "$@" >>"$log" 2>&1; then
      echo "$pkg $FETCHED_VERSION" >"$STAMPS/$name"
      say "$name: $pkg $FETCHED_VERSION ($CODENAME${FETCHED_LIBS:+, with unpacked $FETCHED_LIBS}) -> .tools/bin/$name"
      return 0
    fi
    err "$name: the unpacked $pkg does not run here"
  fi
  tail -n 8 "$log" >&2 || true
  return 1
}

fetch_openssl() {
  fetch_simple openssl openssl usr/bin/openssl version
}

# fetch_etcd VERSION SUITE: etcd-server + etcd-client from SUITE unpacked into .tools/etcd-VERSION.
fetch_etcd() {
  local ver=$1 suite=$2 name=etcd-$1
  local work; work=$(mktemp -d "$TOOLS/.work.$name.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  local log=$work/apt.log opts=() have_debs=1 p
  mkdir -p "$work/debs" "$work/$name/root" "$work/$name/bin"
  DEB_VER_PREFIX=$ver.
  if [[ -n ${TOOLS_DEB_DIR:-} ]]; then
    for p in etcd-server etcd-client; do
      [[ -n $(find "$TOOLS_DEB_DIR" -maxdepth 1 -name "${p}_${ver}.*.deb") ]] || have_debs=0
    done
  else
    have_debs=0
  fi
  if [[ $suite != "$CODENAME" && $have_debs -eq 0 ]]; then
    # A private apt configuration for $suite: sources list, lists and caches in $work/apt; nothing system-wide.
    local mirror a=$work/apt keyring ok=0
    mirror=$(detect_mirror) || true
    if [[ -z $mirror ]]; then
      err "$name: no http(s) Debian mirror for '$CODENAME' found in /etc/apt/sources.list or /etc/apt/sources.list.d/"
      return 1
    fi
    mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
    opts=(-o "Dir::Etc::SourceList=$a/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache"
      -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null -o Acquire::Retries=1)
    local extra=""
    [[ $mirror == *snapshot.debian.org* ]] && extra=" check-valid-until=no"
    # Prefer a keyring that verifies $suite's Release file; [trusted=yes] only if none does.
    for keyring in /usr/share/keyrings/debian-archive-keyring.gpg /usr/share/keyrings/debian-archive-"$suite"-automatic.gpg \
      /usr/share/keyrings/debian-archive-"$suite"-stable.gpg trusted; do
      if [[ $keyring == trusted ]]; then
        say "$name: no keyring in /usr/share/keyrings verifies $suite's Release file; using [trusted=yes]"
        echo "deb [trusted=yes$extra] $mirror $suite main" >"$a/sources.list"
      else
        [[ -f $keyring ]] || continue
        echo "deb [signed-by=$keyring$extra] $mirror $suite main" >"$a/sources.list"
      fi
      rm -rf "$a/lists" && mkdir -p "$a/lists/partial"
      if apt-get "${APT_COMMON[@]}" "${opts[@]}" update >"$a/update.log" 2>&1 \
        && ! grep -qE 'NO_PUBKEY|GPG error|not signed|EXPKEYSIG|BADSIG' "$a/update.log" \
        && compgen -G "$a/lists/*_Packages*" >/dev/null; then
        ok=1; cat "$a/update.log" >>"$log"; break
      fi
      cat "$a/update.log" >>"$log"
      # Only a signature problem is worth another keyring; anything else (network, mirror) is final.
      grep -qE 'NO_PUBKEY|GPG error|not signed|EXPKEYSIG|BADSIG|KEYEXPIRED|signature' "$a/update.log" || break
    done
    if [[ $ok -ne 1 ]]; then tail -n 8 "$log" >&2; return 1; fi
  fi
  if ! deb_get "$work/debs" "$log" ${opts[@]+"${opts[@]}"} -- etcd-server etcd-client; then
    if [[ $suite == "$CODENAME" ]]; then
      apt-get "${APT_COMMON[@]}" update >>"$log" 2>&1 || true
      deb_get "$work/debs" "$log" -- etcd-server etcd-client || { tail -n 8 "$log" >&2; return 1; }
    else
      tail -n 8 "$log" >&2; return 1
    fi
  fi
  local srv cli bins=(etcd etcdctl)
  srv=$(deb_file "$work/debs" etcd-server); cli=$(deb_file "$work/debs" etcd-client)
  dpkg-deb -x "$srv" "$work/$name/root"
  dpkg-deb -x "$cli" "$work/$name/root"
  [[ $ver == 3.4 ]] || bins+=(etcdutl)
  for p in "${bins[@]}"; do
    if [[ ! -x $work/$name/root/usr/bin/$p ]]; then
      err "$name: $p not found in $(basename "$srv") / $(basename "$cli")"; return 1
    fi
    ln -s "../root/usr/bin/$p" "$work/$name/bin/$p"
  done
  # Verify the binaries run here and are the expected minor version.
  local out
  out=$("$work/$name/bin/etcd" --version 2>&1) || { err "$name: etcd --version failed: $out"; return 1; }
  [[ $out == *"etcd Version: $ver."* ]] || { err "$name: unexpected etcd version: $out"; return 1; }
  out=$("$work/$name/bin/etcdctl" version 2>&1) || { err "$name: etcdctl version failed: $out"; return 1; }
  [[ $out == *"etcdctl version: $ver."* ]] || { err "$name: unexpected etcdctl version: $out"; return 1; }
  if [[ $ver != 3.4 ]]; then
    out=$("$work/$name/bin/etcdutl" version 2>&1) || { err "$name: etcdutl version failed: $out"; return 1; }
    [[ $out == *"etcdutl version: $ver."* ]] || { err "$name: unexpected etcdutl version: $out"; return 1; }
  fi
  rm -rf "${TOOLS:?}/$name"
  mv "$work/$name" "$TOOLS/$name"
  local sv cv
  sv=$(dpkg-deb -f "$srv" Version); cv=$(dpkg-deb -f "$cli" Version)
  echo "etcd-server $sv etcd-client $cv" >"$STAMPS/$name"
  say "$name: etcd-server $sv + etcd-client $cv ($suite) -> .tools/$name/bin/{$(IFS=,; echo "${bins[*]}")}"
}

fetch_one() {
  mkdir -p "$TOOLS" "$STAMPS"
  case $1 in
    openssl) fetch_openssl ;;
    shellcheck) fetch_simple shellcheck shellcheck usr/bin/shellcheck --version ;;
    haproxy) fetch_simple haproxy haproxy usr/sbin/haproxy -v ;;
    etcd-3.4) fetch_etcd 3.4 "$CODENAME" ;;
    etcd-3.5) fetch_etcd 3.5 "$NEWER" ;;
    sshd) fetch_with_libs sshd openssh-server usr/sbin/sshd -V ;;
    keepalived) fetch_with_libs keepalived keepalived usr/sbin/keepalived --version ;;
    containerd) fetch_simple containerd containerd usr/bin/containerd --version ;;
    *) err "unknown tool $1"; return 2 ;;
  esac
}

manual_help() {
  local t mirror
  mirror=$(detect_mirror 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  err "could not provide: $*"
  err "Fetch the packages by hand, then run ensure-tools.sh again:"
  for t in "$@"; do
    case $t in
      openssl | shellcheck | haproxy | sshd | keepalived | containerd)
        local pkg=$t; [[ $t == sshd ]] && pkg=openssh-server
        err "  $t: mkdir -p /tmp/debs && cd /tmp/debs && apt-get update && apt-get download $pkg  (and the lib* packages it needs)"
        err "    then: TOOLS_DEB_DIR=/tmp/debs bash test/tools/ensure-tools.sh   (nothing is installed system-wide)" ;;
      etcd-3.4)
        err "  etcd 3.4 (Debian $CODENAME): mkdir -p /tmp/debs && cd /tmp/debs && apt-get update && apt-get download etcd-server etcd-client"
        err "    then: TOOLS_DEB_DIR=/tmp/debs bash test/tools/ensure-tools.sh" ;;
      etcd-3.5)
        err "  etcd 3.5 (Debian $NEWER, has etcdutl): fetch etcd-server_3.5.*.deb and etcd-client_3.5.*.deb from $mirror/pool/main/e/etcd/ into /tmp/debs, e.g."
        err "    mkdir -p /tmp/t/lists/partial /tmp/debs && echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $NEWER main' > /tmp/t/sources.list"
        err "    O='-o Dir::Etc::SourceList=/tmp/t/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=/tmp/t/lists'"
        err "    apt-get \$O update && (cd /tmp/debs && apt-get \$O download etcd-server etcd-client)"
        err "    then: TOOLS_DEB_DIR=/tmp/debs bash test/tools/ensure-tools.sh" ;;
    esac
  done
}

main() {
  local force=0 t missing=() failed=()
  case ${1:-} in
    --fetch) fetch_one "$2"; return ;;
    --force) force=1 ;;
    "") ;;
    *) err "usage: bash test/tools/ensure-tools.sh [--force]"; return 2 ;;
  esac
  for t in "${ALL_TOOLS[@]}"; do
    if [[ $force -eq 1 ]] || ! tool_present "$t"; then missing+=("$t"); fi
  done
  ((${#missing[@]})) || return 0
  mkdir -p "$TOOLS" "$STAMPS"
  [[ -f $TOOLS/.gitignore ]] || echo '*' >"$TOOLS/.gitignore"
  for t in "${missing[@]}"; do
    rm -f "$STAMPS/$t"
    # A child bash per tool: `set -e` stays in force inside it, and one failure does not stop the others.
    bash "$SELF" --fetch "$t" || failed+=("$t")
  done
  if ((${#failed[@]})); then
    manual_help "${failed[@]}"
    return 1
  fi
}

main "$@"
