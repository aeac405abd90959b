#!/usr/bin/env bash
# Tests of scripts/install.sh: --dry-run changes nothing and says what it would do, every
# refusal says why, the package step is idempotent, and the NIC-binding safety checks refuse a
# NIC with the default route or an address. Those run in a network namespace this test makes
# (addresses in 198.18.0.0/15) against a fake sysfs tree, and are removed at the end.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
INSTALL="$REPO/scripts/install.sh"
WORK=$(mktemp -d)
NETNS="relay-install-test-$$"
PASSED=0
FAILED=0

cleanup() {
  ip netns del "$NETNS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

pass() { PASSED=$((PASSED + 1)); echo "ok   - $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $1"; [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/       /'; }

# expect NAME EXIT_CODE PATTERN -- COMMAND...: runs COMMAND, checks its exit code and that its
# output (stdout and stderr) matches the extended regex PATTERN.
expect() {
  local name=$1 code=$2 pattern=$3
  shift 4
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" != "$code" ]; then
    fail "$name (exit $rc, wanted $code)" "$out"
  elif ! grep -Eq -- "$pattern" <<<"$out"; then
    fail "$name (output lacks /$pattern/)" "$out"
  else
    pass "$name"
  fi
}

# A fake /etc so dry runs and write checks never touch the real one.
FAKE_ETC="$WORK/etc"
mkdir -p "$FAKE_ETC"
cp /etc/os-release "$FAKE_ETC/os-release"
export RELAY_ETC="$FAKE_ETC"
FAKE_VARLIB="$WORK/varlib"
mkdir -p "$FAKE_VARLIB"
export RELAY_VARLIB="$FAKE_VARLIB"

expect "--help explains the options" 0 "--hugepages N" -- "$INSTALL" --help
expect "unknown option is refused" 2 "unknown option '--frobnicate'" -- "$INSTALL" --frobnicate

# The real package step, safe here: everything is installed already, so it must do nothing.
expect "package step is idempotent" 0 "packages already installed" -- "$INSTALL" --packages --test-deps
out=$("$INSTALL" --packages 2>&1)
if grep -q "apt-get" <<<"$out"; then fail "second package run calls apt-get" "$out"; else pass "second package run calls no apt-get"; fi

# A full dry run: every action printed, nothing changed.
NCPUS=$(nproc --all)
LAST=$((NCPUS - 1))
expect "dry run prints the hugepage, grub and unit actions" 0 \
  "would: write $FAKE_ETC/sysctl.d/80-relay-hugepages.conf" -- \
  "$INSTALL" --dry-run --hugepages 512 --isolate "$LAST" --write-grub --systemd
out=$("$INSTALL" --dry-run --hugepages 512 --isolate "$LAST" --write-grub --systemd 2>&1)
for want in "would: cargo build --release --locked" "vm.nr_hugepages = 512" \
  "would: write $FAKE_ETC/default/grub.d/90-relay-isolate.cfg" \
  "isolcpus=managed_irq,domain,$LAST nohz_full=$LAST rcu_nocbs=$LAST" \
  "would: write $FAKE_ETC/systemd/system/relay-dataplane.service" "CPUAffinity=0 $LAST" \
  "would: relayctl keygen --out $FAKE_ETC/relay/cdr.kek" "target/release/relayctl /usr/local/bin/relayctl" \
  "target/release/relay-control /usr/local/bin/relay-control" \
  "would: write $FAKE_ETC/systemd/system/relay-control.service" "ExecReload=/bin/kill -HUP" \
  "docs/control.toml.sample $FAKE_ETC/relay/control.toml" \
  "would: install -d -m 0700 $FAKE_VARLIB/relay/cdr" "would: install -d -m 0700 $FAKE_VARLIB/relay/cdr-keys" \
  "hugetlbfs" "RuntimeDirectory=relay" \
  "would: /usr/local/bin/relay-control --config $FAKE_ETC/relay/control.toml --check"; do
  if grep -qF -- "$want" <<<"$out"; then pass "dry run mentions: $want"; else fail "dry run mentions: $want" "$out"; fi
done
if grep -qE "systemctl enable relay-dataplane.service relay-control.service|ln -sf .*multi-user.target.wants/relay-control.service" <<<"$out" \
  && grep -qE "systemctl enable relay-dataplane.service relay-control.service|ln -sf .*multi-user.target.wants/relay-dataplane.service" <<<"$out"; then
  pass "dry run enables both units"
else
  fail "dry run enables both units" "$out"
fi
if [ -z "$(find "$FAKE_ETC" -mindepth 1 ! -name os-release)" ] && [ -z "$(find "$FAKE_VARLIB" -mindepth 1)" ]; then
  pass "dry run wrote nothing"
else
  fail "dry run wrote files" "$(find "$FAKE_ETC" "$FAKE_VARLIB")"
fi

# Refusals, each with what to do.
expect "--streams adds the heap's pages to the pool" 0 "vm.nr_hugepages = 610" -- \
  "$INSTALL" --dry-run --no-build --hugepages 512 --streams 100000
expect "--streams says how it sized the pool" 0 "512 hugepages for the EAL \+ 98 for the heap of 100000 streams = 610" -- \
  "$INSTALL" --dry-run --no-build --hugepages 512 --streams 100000
expect "--streams with a leading zero is refused (not read as octal)" 2 "not '0123'" -- \
  "$INSTALL" --dry-run --no-build --hugepages 512 --streams 0123
expect "--streams alone is refused" 2 "goes with --hugepages N" -- "$INSTALL" --dry-run --no-build --streams 1000
expect "--streams must be a number" 2 "from 1 to 999999999, not 'many'" -- "$INSTALL" --dry-run --no-build --hugepages 512 --streams many
expect "hugepages must be a number" 2 "positive number of 2 MiB pages, not 'lots'" -- "$INSTALL" --dry-run --hugepages lots
expect "isolating a missing core" 2 "core $NCPUS does not exist" -- "$INSTALL" --dry-run --isolate "$NCPUS"
expect "isolating core 0" 2 "keep core 0 for the kernel" -- "$INSTALL" --dry-run --isolate 0
expect "bad core list" 2 "wants a core list like 2-5" -- "$INSTALL" --dry-run --isolate "1-"
expect "--write-grub without --isolate" 2 "needs --isolate" -- "$INSTALL" --dry-run --write-grub
expect "--pktgen-src alone is refused" 2 "goes with --with-pktgen" -- "$INSTALL" --dry-run --no-build --pktgen-src /dev/null
expect "an unreadable pktgen tarball is refused" 2 "cannot read '/nonexistent/pktgen.tar.xz'" -- "$INSTALL" --dry-run --no-build --with-pktgen --pktgen-src /nonexistent/pktgen.tar.xz
pktgen_prefix=$(mktemp -d /tmp/relay-install-pktgen.XXXXXX)
expect "dry run downloads and builds pktgen 23.03.0" 0 "would: curl .*pktgen-dpdk-pktgen-23.03.0.tar.xz" -- "$INSTALL" --dry-run --no-build --with-pktgen --prefix "$pktgen_prefix"
expect "dry run builds pktgen with Lua" 0 "meson setup .*-Denable_lua=true" -- "$INSTALL" --dry-run --no-build --with-pktgen --prefix "$pktgen_prefix"
[ -z "$(ls -A "$pktgen_prefix")" ] || { echo "install_test: the pktgen dry run wrote into $pktgen_prefix" >&2; exit 1; }
rmdir "$pktgen_prefix"
expect "bad PCI address" 2 "is not a PCI address like 0000:03:00.0" -- "$INSTALL" --dry-run --no-build --bind eth0
expect "missing PCI device" 2 "no PCI device 0000:ff:1f.7" -- "$INSTALL" --dry-run --no-build --bind 0000:ff:1f.7

# NIC binding checks against a fake sysfs inside our own network namespace.
if ip netns add "$NETNS" 2>/dev/null; then
  SYS="$WORK/sys"
  mkdir -p "$SYS/bus/pci/devices/0000:03:00.0/net/media0" "$SYS/bus/pci/devices/0000:03:00.1/net/media1" \
    "$SYS/bus/pci/devices/0000:03:00.2/net/media2" "$SYS/kernel/iommu_groups"
  nsrun() { ip netns exec "$NETNS" env RELAY_SYSFS="$SYS" "$@"; }
  for i in 0 1 2; do
    ip -n "$NETNS" link add "media$i" type veth peer name "peer$i"
    ip -n "$NETNS" link set "media$i" up
  done
  ip -n "$NETNS" addr add 198.18.0.2/24 dev media0
  ip -n "$NETNS" route add default via 198.18.0.1 dev media0
  ip -n "$NETNS" addr add 198.18.1.2/24 dev media1

  expect "refuses the NIC with the default route" 2 "carries the default route" -- nsrun "$INSTALL" --dry-run --no-build --bind 0000:03:00.0
  expect "refuses a NIC with an address" 2 "has address\\(es\\) 198.18.1.2/24" -- nsrun "$INSTALL" --dry-run --no-build --bind 0000:03:00.1
  expect "refuses without an IOMMU" 2 "no IOMMU groups" -- nsrun "$INSTALL" --dry-run --no-build --bind 0000:03:00.2
  mkdir -p "$SYS/kernel/iommu_groups/7"
  expect "binds a free NIC persistently" 0 "would: driverctl set-override 0000:03:00.2 vfio-pci" -- nsrun "$INSTALL" --dry-run --no-build --bind 0000:03:00.2
else
  fail "could not create network namespace $NETNS (needs root and iproute2)"
fi

echo "install.sh tests: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
