#!/usr/bin/env bash
# Bare-metal installer for the SRTP media relay on Debian 12 / Ubuntu 22.04 or later.
#
# Idempotent: run it again with the same options and it changes nothing. With --dry-run it
# prints every action it would take ("would: ...") and changes nothing at all.
#
# See `scripts/install.sh --help`.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Test seams: the system trees the checks read and the files the installer writes.
SYSFS=${RELAY_SYSFS:-/sys}
ETC=${RELAY_ETC:-/etc}
PROC=${RELAY_PROC:-/proc}
VARLIB=${RELAY_VARLIB:-/var/lib}

# iproute2 and ethtool: the demo (scripts/demo.sh) builds network namespaces and veth pairs.
BUILD_PACKAGES=(dpdk libdpdk-dev dpdk-dev clang libclang-dev pkg-config build-essential ca-certificates curl iproute2 ethtool)
# baresip-core and iputils-ping: the SIP/TLS user agents and the reachability checks of
# relay-testsupport's namespace tests (tcpdump captures their media); sip-tester: SIPp, the
# operator-side SIP/UDP and SIP/TCP user agent of dataplane/tests/sbc_sipp_operator.rs.
TEST_PACKAGES=(libsrtp2-dev libpcap-dev tcpdump iproute2 ethtool iputils-ping baresip-core sip-tester)

DRY_RUN=0
PACKAGES_ONLY=0
TEST_DEPS=0
BUILD=1
HUGEPAGES=""
HEAP_STREAMS=""
BIND=()
ISOLATE=""
WRITE_GRUB=0
SYSTEMD=0
CPU_AFFINITY=""
PREFIX=/usr/local
WITH_PKTGEN=0
PKTGEN_SRC=""
# pktgen-dpdk for operators' throughput runs (bench/pktgen/): the last release line that
# builds against DPDK 22.11. Not in Debian: built from its source tarball.
PKTGEN_VERSION=23.03.0
PKTGEN_URL="https://git.dpdk.org/apps/pktgen-dpdk/snapshot/pktgen-dpdk-pktgen-$PKTGEN_VERSION.tar.xz"
PKTGEN_PACKAGES=(meson ninja-build liblua5.3-dev libnuma-dev libpcap-dev pkg-config build-essential)

usage() {
  cat <<'EOF'
Usage: scripts/install.sh [OPTIONS]

Installs what the relay needs on Debian 12 / Ubuntu 22.04+, builds its release binaries and,
on request, prepares the host for DPDK. Safe to run again: finished steps are skipped.

  --packages          install the OS packages (and a Rust toolchain if cargo is missing), then stop
  --test-deps         also install the packages the test suite uses (libsrtp2, libpcap, tcpdump, baresip, SIPp, ...)
  --no-build          do not build the release binaries
  --dry-run           print every action instead of doing it; nothing is changed
  --hugepages N       reserve N 2 MiB hugepages now and at every boot, mount hugetlbfs
  --streams S         with --hugepages: reserve room in the pool for the relay's heap too, for S
                      concurrent media streams (one 2 MiB page per 1,024 streams, about 2 KB
                      each, above the 1.3-1.8 KB a SRTP stream measures), beyond the N for the EAL
  --bind PCI...       bind these NICs (e.g. 0000:03:00.0) to vfio-pci, persistently (driverctl);
                      refuses a NIC that carries the default route or an IP address, and a host
                      without an IOMMU
  --isolate CORES     print the kernel command line that isolates CORES (e.g. 2-5) for workers:
                      isolcpus, nohz_full, rcu_nocbs, irqaffinity
  --write-grub        with --isolate: write it to /etc/default/grub.d/ and run update-grub
  --systemd           install the binaries under --prefix and the systemd units relay-dataplane
                      and relay-control, both enabled, the data plane first (its
                      /etc/relay/control.toml from docs/control.toml.sample);
                      create the CDR key-encryption key and the CDR data and key directories
  --cpu-affinity LIST CPUAffinity= of the unit (default: core 0 plus the --isolate cores)
  --prefix DIR        where binaries go with --systemd (default /usr/local)
  --with-pktgen       build pktgen-dpdk 23.03.0 (with Lua, for bench/pktgen/) into PREFIX/bin/pktgen,
                      its source under PREFIX/src; downloads the release tarball from dpdk.org
  --pktgen-src FILE   with --with-pktgen: build from this source tarball instead of downloading
  -h, --help          this text
EOF
}

die() { echo "install.sh: error: $*" >&2; exit 2; }
note() { echo "install.sh: $*"; }

# Runs a command, or with --dry-run prints it. Commands that need root get sudo when the
# caller is not root.
run() {
  if [ "$DRY_RUN" = 1 ]; then
    echo "would: $*"
    return 0
  fi
  echo "+ $*"
  "$@"
}
run_root() {
  if [ "$DRY_RUN" = 1 ] || [ "$(id -u)" = 0 ]; then
    run "$@"
  elif command -v sudo >/dev/null 2>&1; then
    run sudo "$@"
  else
    die "'$*' needs root: run this script as root or install sudo"
  fi
}

# Writes CONTENT to FILE (as root) unless it already holds exactly that.
write_file() {
  local file=$1 content=$2 mode=${3:-0644}
  if [ -f "$file" ] && [ "$(cat "$file")" = "$content" ]; then
    note "$file is up to date"
    return 0
  fi
  if [ "$DRY_RUN" = 1 ]; then
    echo "would: write $file:"
    printf '%s\n' "$content" | sed 's/^/    | /'
    return 0
  fi
  echo "+ write $file"
  run_root mkdir -p "$(dirname "$file")"
  printf '%s\n' "$content" | run_root tee "$file" >/dev/null
  run_root chmod "$mode" "$file"
}

# --- arguments ---------------------------------------------------------------------------
while [ $# -gt 0 ]; do
  case "$1" in
    --packages) PACKAGES_ONLY=1 ;;
    --test-deps) TEST_DEPS=1 ;;
    --no-build) BUILD=0 ;;
    --dry-run) DRY_RUN=1 ;;
    --hugepages) [ $# -ge 2 ] || die "--hugepages needs a number of 2 MiB pages, e.g. --hugepages 1024"
      HUGEPAGES=$2; shift ;;
    --streams) [ $# -ge 2 ] || die "--streams needs a number of concurrent media streams, e.g. --streams 1000000"
      HEAP_STREAMS=$2; shift ;;
    --bind) shift
      while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do BIND+=("$1"); shift; done
      [ ${#BIND[@]} -gt 0 ] || die "--bind needs one or more PCI addresses, e.g. --bind 0000:03:00.0"
      continue ;;
    --isolate) [ $# -ge 2 ] || die "--isolate needs a core list, e.g. --isolate 2-5"
      ISOLATE=$2; shift ;;
    --write-grub) WRITE_GRUB=1 ;;
    --systemd) SYSTEMD=1 ;;
    --cpu-affinity) [ $# -ge 2 ] || die "--cpu-affinity needs a core list, e.g. --cpu-affinity 0,2-5"
      CPU_AFFINITY=$2; shift ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"
      PREFIX=$2; shift ;;
    --with-pktgen) WITH_PKTGEN=1 ;;
    --pktgen-src) [ $# -ge 2 ] || die "--pktgen-src needs a pktgen-dpdk $PKTGEN_VERSION source tarball"
      PKTGEN_SRC=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
  shift
done

# --- validation before any change ----------------------------------------------------------
if [ -n "$HUGEPAGES" ] && ! [[ "$HUGEPAGES" =~ ^[0-9]+$ && "$HUGEPAGES" -ge 1 ]]; then
  die "--hugepages wants a positive number of 2 MiB pages, not '$HUGEPAGES' (e.g. --hugepages 1024 for 2 GiB)"
fi
if [ -n "$HEAP_STREAMS" ]; then
  [ -n "$HUGEPAGES" ] || die "--streams sizes the hugepage pool: it goes with --hugepages N (the pages for the EAL)"
  [[ "$HEAP_STREAMS" =~ ^[1-9][0-9]{0,8}$ ]] \
    || die "--streams wants a number of concurrent media streams from 1 to 999999999, not '$HEAP_STREAMS' (e.g. --streams 1000000)"
fi
[ "$WRITE_GRUB" = 0 ] || [ -n "$ISOLATE" ] || die "--write-grub needs --isolate CORES"
if [ -n "$PKTGEN_SRC" ]; then
  [ "$WITH_PKTGEN" = 1 ] || die "--pktgen-src goes with --with-pktgen"
  [ -r "$PKTGEN_SRC" ] || die "--pktgen-src: cannot read '$PKTGEN_SRC' (a pktgen-dpdk $PKTGEN_VERSION .tar.xz or .tar.gz)"
  PKTGEN_SRC=$(cd "$(dirname "$PKTGEN_SRC")" && pwd)/$(basename "$PKTGEN_SRC")
fi

# Checks a core list such as "1,3-5"; dies with the option name on bad syntax.
check_cores() {
  local list=$1 option=$2 part
  [[ "$list" =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] \
    || die "$option wants a core list like 2-5 or 1,3,5, not '$list'"
  IFS=, read -ra parts <<<"$list"
  for part in "${parts[@]}"; do
    [ "${part%-*}" -le "${part#*-}" ] || die "$option: range '$part' runs backwards"
  done
}

# Expands a checked core list such as "1,3-5" to "1 3 4 5".
expand_cores() {
  local part c out=()
  IFS=, read -ra parts <<<"$1"
  for part in "${parts[@]}"; do
    for ((c = ${part%-*}; c <= ${part#*-}; c++)); do out+=("$c"); done
  done
  echo "${out[@]}"
}

NCPUS=$(nproc --all)
ISOLATED_CORES=()
if [ -n "$ISOLATE" ]; then
  check_cores "$ISOLATE" --isolate
  read -ra ISOLATED_CORES <<<"$(expand_cores "$ISOLATE")"
  for c in "${ISOLATED_CORES[@]}"; do
    [ "$c" -lt "$NCPUS" ] || die "--isolate: core $c does not exist (this machine has cores 0-$((NCPUS - 1)))"
    [ "$c" != 0 ] || die "--isolate: keep core 0 for the kernel, interrupts and the control plane; isolate worker cores only"
  done
  [ "${#ISOLATED_CORES[@]}" -lt "$NCPUS" ] || die "--isolate: at least one core must stay for the kernel"
fi
if [ -n "$CPU_AFFINITY" ]; then
  check_cores "$CPU_AFFINITY" --cpu-affinity
  for c in $(expand_cores "$CPU_AFFINITY"); do
    [ "$c" -lt "$NCPUS" ] || die "--cpu-affinity: core $c does not exist (this machine has cores 0-$((NCPUS - 1)))"
  done
fi
for pci in "${BIND[@]}"; do
  [[ "$pci" =~ ^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$ ]] \
    || die "--bind: '$pci' is not a PCI address like 0000:03:00.0 (see 'lspci -D' or 'dpdk-devbind.py --status')"
done

# --- packages -------------------------------------------------------------------------------
check_os() {
  local id="" version=""
  if [ -r "$ETC/os-release" ]; then
    id=$(. "$ETC/os-release"; echo "${ID:-}")
    version=$(. "$ETC/os-release"; echo "${VERSION_ID:-}")
  fi
  case "$id:$version" in
    debian:12*|debian:13*|ubuntu:22.04|ubuntu:24.04|ubuntu:2[4-9].*) ;;
    *) note "warning: tested on Debian 12 and Ubuntu 22.04+; this is '$id $version', continuing" ;;
  esac
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this installer supports Debian and Ubuntu only"
}

install_packages() {
  local wanted=("${BUILD_PACKAGES[@]}") missing=() p
  [ "$TEST_DEPS" = 0 ] || wanted+=("${TEST_PACKAGES[@]}")
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    note "packages already installed: ${wanted[*]}"
  else
    note "installing packages: ${missing[*]}"
    run_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    run_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  if [ "$DRY_RUN" = 0 ] && ! pkg-config --atleast-version=22.11 libdpdk; then
    die "pkg-config finds no libdpdk >= 22.11 after installing libdpdk-dev; this release needs DPDK 22.11 LTS or later"
  fi
}

install_rust() {
  if command -v cargo >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/cargo" ]; then
    note "Rust toolchain present: $(cargo --version 2>/dev/null || "$HOME/.cargo/bin/cargo" --version)"
    return 0
  fi
  # Debian 12's own rustc (1.63) is too old for the dependencies; use rustup's stable.
  note "cargo not found: installing the stable Rust toolchain with rustup"
  if [ "$DRY_RUN" = 1 ]; then
    echo "would: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt"
    return 0
  fi
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt \
    || die "could not install Rust with rustup; install a Rust toolchain (1.89 or later) by hand and run again"
}

build_release() {
  local cargo=cargo
  command -v cargo >/dev/null 2>&1 || cargo="$HOME/.cargo/bin/cargo"
  (cd "$REPO" && run "$cargo" build --release --locked --workspace --bins)
}

# --- pktgen-dpdk ----------------------------------------------------------------------------
# Builds pktgen-dpdk $PKTGEN_VERSION with Lua from a source tarball (--pktgen-src, or the
# release downloaded from dpdk.org) under PREFIX/src and installs PREFIX/bin/pktgen. Skipped
# when that binary already reports this version.
install_pktgen() {
  local src="$PREFIX/src/pktgen-dpdk-$PKTGEN_VERSION" bin="$PREFIX/bin/pktgen" missing=() p tarball
  if [ -x "$bin" ] && [ -f "$src/.relay-built" ] && [ "$(cat "$src/.relay-built")" = "$PKTGEN_VERSION" ]; then
    note "pktgen $PKTGEN_VERSION already built: $bin"
    return 0
  fi
  for p in "${PKTGEN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    note "installing pktgen's build packages: ${missing[*]}"
    run_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    run_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  tarball=$PKTGEN_SRC
  if [ -z "$tarball" ]; then
    tarball=/tmp/pktgen-dpdk-$PKTGEN_VERSION.tar.xz
    run curl -fsSL --proto '=https' -o "$tarball" "$PKTGEN_URL" \
      || die "could not download $PKTGEN_URL; give --pktgen-src FILE (a pktgen-dpdk $PKTGEN_VERSION source tarball)"
  fi
  run_root rm -rf "$src"
  run_root mkdir -p "$src"
  run_root tar -xf "$tarball" -C "$src" --strip-components=1
  if [ "$DRY_RUN" = 0 ] && [ "$(tr -d '[:space:]' <"$src/VERSION" 2>/dev/null)" != "$PKTGEN_VERSION" ]; then
    die "$tarball is not pktgen-dpdk $PKTGEN_VERSION (its VERSION file says '$(cat "$src/VERSION" 2>/dev/null)'); $PKTGEN_VERSION is the last release that builds against DPDK 22.11"
  fi
  # 23.03's Lua library includes DPDK headers without depending on DPDK in meson (hence the
  # CFLAGS), and newer compilers' warnings would stop its -Werror build.
  local log=/tmp/relay-pktgen-build.log
  logged() {
    if [ "$DRY_RUN" = 1 ]; then echo "would: $* (output to $log)"; return 0; fi
    echo "+ $* (output to $log)"
    run_root "$@" >>"$log" 2>&1
  }
  logged env CFLAGS="$(pkg-config --cflags libdpdk 2>/dev/null)" \
    meson setup "$src/build" "$src" -Denable_lua=true -Dwerror=false \
    || die "pktgen's meson setup failed in $src (is libdpdk-dev 22.11 installed? see $log)"
  logged ninja -C "$src/build" || die "pktgen's build failed in $src/build (see $log)"
  run_root install -D -m 0755 "$src/build/app/pktgen" "$bin"
  [ "$DRY_RUN" = 1 ] || printf '%s\n' "$PKTGEN_VERSION" | run_root tee "$src/.relay-built" >/dev/null
  [ "$DRY_RUN" = 1 ] || note "pktgen $PKTGEN_VERSION installed: $bin (scripts: bench/pktgen/, README \"pktgen-dpdk\")"
}

# --- hugepages ------------------------------------------------------------------------------
setup_hugepages() {
  local n=$1 streams=${2:-} split=
  # With the EAL on hugepages the data plane puts its heap (calls, SRTP contexts, flows) on the
  # same pool (glibc.malloc.hugetlb=2, README "Memory"); glibc falls back to ordinary pages when
  # the pool runs out, so the room is for speed, not correctness.
  if [ -n "$streams" ]; then
    local heap=$(((streams + 1023) / 1024))
    split="$n hugepages for the EAL + $heap for the heap of $streams streams = $((n + heap))"
    note "$split"
    split="
# $split (--streams)"
    n=$((n + heap))
  fi
  write_file "$ETC/sysctl.d/80-relay-hugepages.conf" "# Reserved for the relay's DPDK data plane (scripts/install.sh --hugepages).$split
vm.nr_hugepages = $n"
  local current
  current=$(cat "$PROC/sys/vm/nr_hugepages" 2>/dev/null || echo 0)
  if [ "$current" = "$n" ]; then
    note "$n hugepages already reserved"
  else
    run_root sysctl -q -w "vm.nr_hugepages=$n"
    if [ "$DRY_RUN" = 0 ]; then
      current=$(cat "$PROC/sys/vm/nr_hugepages")
      [ "$current" -ge "$n" ] || note "warning: only $current of $n hugepages could be reserved now (memory is fragmented); they will all be reserved at the next boot"
    fi
  fi
  if grep -qs ' hugetlbfs ' "$PROC/mounts"; then
    note "hugetlbfs already mounted"
  else
    run_root mkdir -p /dev/hugepages
    run_root mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages
  fi
  if grep -qs '^[^#].* hugetlbfs ' "$ETC/fstab"; then
    note "hugetlbfs already in $ETC/fstab"
  elif [ "$DRY_RUN" = 1 ]; then
    echo "would: append 'nodev /dev/hugepages hugetlbfs pagesize=2M 0 0' to $ETC/fstab"
  else
    echo "+ append hugetlbfs to $ETC/fstab"
    echo 'nodev /dev/hugepages hugetlbfs pagesize=2M 0 0' | run_root tee -a "$ETC/fstab" >/dev/null
  fi
}

# --- NIC binding ----------------------------------------------------------------------------
bind_nic() {
  local pci=$1 dev="$SYSFS/bus/pci/devices/$1" ifname route_dev addrs driver=""
  [ -d "$dev" ] || die "--bind: no PCI device $pci on this host (list them with 'dpdk-devbind.py --status')"
  if [ -e "$dev/driver" ]; then driver=$(basename "$(readlink -f "$dev/driver")"); fi
  if [ "$driver" = vfio-pci ]; then
    note "$pci is already bound to vfio-pci"
    return 0
  fi
  route_dev=$( (ip -o route show default; ip -o -6 route show default) 2>/dev/null \
    | awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1)}' || true)
  for ifname in $(ls "$dev/net" 2>/dev/null); do
    for r in $route_dev; do
      [ "$r" != "$ifname" ] || die "--bind: $pci is $ifname, which carries the default route; binding it to DPDK would cut this host off. Pick a NIC reserved for media."
    done
    addrs=$(ip -o addr show dev "$ifname" scope global 2>/dev/null | awk '{print $4}' | tr '\n' ' ' || true)
    [ -z "${addrs// /}" ] || die "--bind: $pci is $ifname, which has address(es) $addrs in use; remove them (ip addr flush dev $ifname) if the NIC is meant for DPDK, then run again"
  done
  if [ -z "$(ls -A "$SYSFS/kernel/iommu_groups" 2>/dev/null)" ]; then
    die "--bind: no IOMMU groups: vfio-pci needs the IOMMU. Enable VT-d/AMD-Vi in the firmware and add 'intel_iommu=on iommu=pt' (Intel) or 'amd_iommu=on iommu=pt' (AMD) to the kernel command line, reboot, and run again"
  fi
  if ! command -v driverctl >/dev/null 2>&1; then
    run_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends driverctl
  fi
  run_root modprobe vfio-pci
  # driverctl keeps the override across reboots.
  run_root driverctl set-override "$pci" vfio-pci
}

# --- core isolation -------------------------------------------------------------------------
isolation_cmdline() {
  local cores=$1 housekeeping=() c in_list
  for ((c = 0; c < NCPUS; c++)); do
    in_list=0
    for i in "${ISOLATED_CORES[@]}"; do [ "$i" != "$c" ] || in_list=1; done
    [ "$in_list" = 1 ] || housekeeping+=("$c")
  done
  local hk
  hk=$(IFS=,; echo "${housekeeping[*]}")
  echo "isolcpus=managed_irq,domain,$cores nohz_full=$cores rcu_nocbs=$cores irqaffinity=$hk"
}

setup_isolation() {
  local cmdline
  cmdline=$(isolation_cmdline "$ISOLATE")
  echo "Kernel command line for isolating cores $ISOLATE (add to GRUB_CMDLINE_LINUX_DEFAULT, then reboot):"
  echo "  $cmdline"
  if [ "$WRITE_GRUB" = 1 ]; then
    write_file "$ETC/default/grub.d/90-relay-isolate.cfg" "# Written by scripts/install.sh --isolate $ISOLATE --write-grub
GRUB_CMDLINE_LINUX_DEFAULT=\"\$GRUB_CMDLINE_LINUX_DEFAULT $cmdline\""
    if command -v update-grub >/dev/null 2>&1; then
      run_root update-grub
      note "reboot for the core isolation to take effect"
    else
      note "warning: update-grub not found; add the line above to your boot loader's kernel command line"
    fi
  fi
}

# --- systemd --------------------------------------------------------------------------------
setup_systemd() {
  local bin="$REPO/target/release/relay-dataplane" affinity=$CPU_AFFINITY
  if [ -z "$affinity" ]; then
    affinity=0
    [ -z "$ISOLATE" ] || affinity="0,$ISOLATE"
  fi
  [ -x "$bin" ] || [ "$DRY_RUN" = 1 ] || die "--systemd: $bin is missing; run without --no-build first"
  for name in relay-dataplane relayctl relay-control; do
    if [ -f "$PREFIX/bin/$name" ] && cmp -s "$REPO/target/release/$name" "$PREFIX/bin/$name"; then
      note "$PREFIX/bin/$name is up to date"
    else
      run_root install -D -m 0755 "$REPO/target/release/$name" "$PREFIX/bin/$name"
    fi
  done
  # The CDR store's key-encryption key: made once, never overwritten, owner-only.
  if [ -f "$ETC/relay/cdr.kek" ]; then
    note "$ETC/relay/cdr.kek exists"
  elif [ "$DRY_RUN" = 1 ]; then
    echo "would: relayctl keygen --out $ETC/relay/cdr.kek"
  else
    run_root mkdir -p -m 0700 "$ETC/relay"
    run_root "$PREFIX/bin/relayctl" keygen --out "$ETC/relay/cdr.kek"
  fi
  # The CDR store's directories, owner-only: the data directory, and the key directory beside
  # it, never inside it. A backup of the data directory then holds no key, so a day the purge
  # has shredded stays undecryptable in every backup (README: Backups).
  for dir in "$VARLIB/relay/cdr" "$VARLIB/relay/cdr-keys"; do
    if [ -d "$dir" ] && [ "$(stat -c %a "$dir")" = 700 ]; then
      note "$dir exists"
    elif [ -d "$dir" ]; then
      run_root chmod 0700 "$dir"
    else
      run_root install -d -m 0700 "$dir"
    fi
  done
  # The operator's arguments; never overwritten once it exists.
  if [ -f "$ETC/default/relay-dataplane" ]; then
    note "$ETC/default/relay-dataplane exists; leaving the operator's settings alone"
  else
    write_file "$ETC/default/relay-dataplane" "# Arguments of relay-dataplane (EAL arguments after --). Until this is set, the unit
# runs the self-test demo on virtual devices once. For the relay, for example:
# RELAY_DATAPLANE_ARGS=\"run --port 0000:03:00.0,ipv4=198.18.0.1/24,gw=198.18.0.254 --control /run/relay/dataplane.sock --main-core 1 --workers 2-3 -- --in-memory\"
RELAY_DATAPLANE_ARGS=\"demo\""
  fi
  write_file "$ETC/systemd/system/relay-dataplane.service" "[Unit]
Description=SRTP media relay: DPDK data plane
Documentation=file://$REPO/README.md
After=network-pre.target
Wants=network-pre.target

[Service]
Type=simple
EnvironmentFile=$ETC/default/relay-dataplane
ExecStart=$PREFIX/bin/relay-dataplane \$RELAY_DATAPLANE_ARGS
Restart=on-failure
RestartSec=2
# The EAL pins its lcores itself; this keeps every other thread of the process on these cores.
CPUAffinity=${affinity//,/ }
LimitMEMLOCK=infinity
# /run/relay holds both control sockets (dataplane.sock here, control.sock of relay-control),
# where relayctl looks by default; kept when either unit stops.
RuntimeDirectory=relay
RuntimeDirectoryPreserve=yes
NoNewPrivileges=yes
ProtectHome=yes
ProtectSystem=full
PrivateTmp=yes

[Install]
WantedBy=multi-user.target"
  # relay-control: its configuration starts from the sample and is never overwritten.
  if [ -f "$ETC/relay/control.toml" ]; then
    note "$ETC/relay/control.toml exists; leaving the operator's settings alone"
  else
    run_root install -D -m 0640 "$REPO/docs/control.toml.sample" "$ETC/relay/control.toml"
  fi
  write_file "$ETC/systemd/system/relay-control.service" "[Unit]
Description=SRTP media relay: SIP control plane (B2BUA)
Documentation=file://$REPO/README.md
After=network-online.target relay-dataplane.service
Wants=network-online.target relay-dataplane.service

[Service]
Type=simple
ExecStartPre=$PREFIX/bin/relay-control --config $ETC/relay/control.toml --check
ExecStart=$PREFIX/bin/relay-control --config $ETC/relay/control.toml
# SIGHUP reloads certificates, trust stores and trunk settings; calls go on.
ExecReload=/bin/kill -HUP \$MAINPID
# SIGTERM stops taking calls and ends gracefully; calls in progress survive a restart.
KillSignal=SIGTERM
Restart=on-failure
RestartSec=2
RuntimeDirectory=relay
RuntimeDirectoryPreserve=yes
StateDirectory=relay/control
StateDirectoryMode=0700
NoNewPrivileges=yes
ProtectHome=yes
ProtectSystem=full
PrivateTmp=yes

[Install]
WantedBy=multi-user.target"
  # Both units are enabled: at boot the data plane starts first, relay-control after it
  # (After=/Wants=). relay-control's ExecStartPre refuses a configuration that does not pass
  # --check, so say now whether it does.
  local check_ok=0
  if [ "$DRY_RUN" = 1 ]; then
    echo "would: $PREFIX/bin/relay-control --config $ETC/relay/control.toml --check"
  elif "$PREFIX/bin/relay-control" --config "$ETC/relay/control.toml" --check >/dev/null 2>&1; then
    check_ok=1
  fi
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    run_root systemctl daemon-reload
    run_root systemctl enable relay-dataplane.service relay-control.service
    note "start both with: systemctl start relay-dataplane relay-control (relayctl top shows them)"
  else
    run_root mkdir -p "$ETC/systemd/system/multi-user.target.wants"
    for unit in relay-dataplane relay-control; do
      run_root ln -sf "$ETC/systemd/system/$unit.service" "$ETC/systemd/system/multi-user.target.wants/$unit.service"
    done
    note "systemd is not running here; both units are installed and enabled for the next boot"
  fi
  if [ "$check_ok" = 0 ] && [ "$DRY_RUN" = 0 ]; then
    note "relay-control is enabled, but $ETC/relay/control.toml does not pass its check yet: run"
    note "  $PREFIX/bin/relay-control --config $ETC/relay/control.toml --check"
    note "fix what it names (certificates, trunks), then: systemctl restart relay-control"
  fi
}

# --- main -----------------------------------------------------------------------------------
[ "$DRY_RUN" = 0 ] || note "dry run: nothing will be changed"
check_os
install_packages
install_rust
[ "$PACKAGES_ONLY" = 1 ] && { note "packages done"; exit 0; }
[ "$BUILD" = 0 ] || build_release
[ "$WITH_PKTGEN" = 0 ] || install_pktgen
[ -z "$HUGEPAGES" ] || setup_hugepages "$HUGEPAGES" "$HEAP_STREAMS"
for pci in "${BIND[@]}"; do bind_nic "$pci"; done
[ -z "$ISOLATE" ] || setup_isolation
[ "$SYSTEMD" = 0 ] || setup_systemd
note "done"
