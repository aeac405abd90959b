#!/usr/bin/env bash
# bench/pktgen/ against the relay, as an operator who uses pktgen-dpdk runs them, on the
# virtual devices pktgen 23.03 accepts: net_af_packet on two veth pairs in a namespace this
# test makes (198.18.0.0/15 only). pktgen is built by `scripts/install.sh --with-pktgen`
# from the vendored tarball (../shared/vendor, or PKTGEN_SRC); without it the test says so
# and skips. Checks: the RTP range script's flows all reach the relay's leg b (every step's
# CSV row, the relay's counters with no unknown flows) and the SRTP capture replayed by
# pktgen is re-keyed by the relay with no authentication or replay failures.
#
# Needs root, iproute2, ethtool, DPDK 22.11, about 3.5 GB of memory (pktgen's pools under
# --no-huge). Everything it starts is stopped by PID; the namespace is removed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
say() { echo "pktgen_test: $*"; }
fail() { say "FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || { say "skipped: needs root (network namespaces)"; exit 0; }
SRC=${PKTGEN_SRC:-$ROOT/../shared/vendor/pktgen-dpdk-23.03.0.tar.xz}
if ! command -v pktgen >/dev/null; then
  if [ ! -r "$SRC" ]; then
    say "skipped: pktgen is not installed and no source tarball at $SRC (set PKTGEN_SRC, or scripts/install.sh --with-pktgen)"
    exit 0
  fi
  bash scripts/install.sh --with-pktgen --pktgen-src "$SRC" --no-build >/dev/null \
    || { say "skipped: pktgen did not build here (scripts/install.sh --with-pktgen --pktgen-src $SRC says why)"; exit 0; }
fi
PKTGEN=$(command -v pktgen || echo /usr/local/bin/pktgen)

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --locked -q -p relay-dataplane -p relay-gen-dpdk --bins
BIN=$TARGET/debug

NS=relaypg$$
OUT=$(mktemp -d /tmp/relay-pktgen-test.XXXXXX)
PIDS=()
cleanup() {
  local p i
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  # (timeout passes the signal on to pktgen; give both time to end before KILL.)
  for ((i = 0; i < 50; i++)); do
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && break; p=""; done
    [ -n "${p:-}" ] || break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  [ -n "${KEEP_OUT:-}" ] || rm -rf "$OUT"
}
trap cleanup EXIT

# Generator ports pg0 (to the relay's leg a) and pg1 (from its leg b), with the MACs the
# synthetic sessions name as the peers'; the relay's ends rl0 and rl1.
ip netns add "$NS"
nsx() { ip netns exec "$NS" "$@"; }
nsx ip link set lo up
veth() { # generator end, relay end, generator MAC, relay MAC
  nsx ip link add "$1" type veth peer name "$2"
  nsx ip link set "$1" address "$3"
  nsx ip link set "$2" address "$4"
  for i in "$1" "$2"; do
    nsx ip link set "$i" up
    nsx ethtool -K "$i" tx off >/dev/null 2>&1 || true
  done
}
RELAY_MACS=(02:00:00:00:01:01 02:00:00:00:01:02)
veth pg0 rl0 02:00:00:00:00:10 "${RELAY_MACS[0]}"
veth pg1 rl1 02:00:00:00:00:20 "${RELAY_MACS[1]}"

# Kernel rings of 16,384 frames (the default 512 overflow while the relay waits for the CPU
# pktgen's three busy threads share with it on two cores).
RING=framecnt=16384

# Runs the relay on the sessions file $1 (log $2) in the background; sets RELAY.
start_relay() {
  ip netns exec "$NS" "$BIN/relay-dataplane" run --sessions "$1" --idle-exit-ms 600000 --stats-json "$2.stats.json" \
    --port "net_af_packet0,ipv4=198.18.0.1/16,mac=${RELAY_MACS[0]}" \
    --port "net_af_packet1,ipv4=198.19.0.1/16,mac=${RELAY_MACS[1]}" -- \
    --no-huge -m 256 --no-pci --no-shconf -l 1 --log-level=error --file-prefix="rl$$$3" \
    --vdev=net_af_packet0,iface=rl0,$RING --vdev=net_af_packet1,iface=rl1,$RING \
    </dev/null >"$2" 2>&1 &
  RELAY=$!; PIDS+=("$RELAY")
  local i=0
  until grep -q "^installed" "$2" 2>/dev/null; do
    kill -0 "$RELAY" 2>/dev/null || { cat "$2" >&2; fail "the relay ended at start-up"; }
    i=$((i + 1)); [ "$i" -le 600 ] || fail "the relay did not install its sessions in 60 s"
    sleep 0.1
  done
}

# Stops the relay (its final counters go to $1.stats.json).
stop_relay() {
  kill -INT "$RELAY" 2>/dev/null || true
  local i=0
  while kill -0 "$RELAY" 2>/dev/null; do
    i=$((i + 1)); [ "$i" -le 300 ] || { kill -KILL "$RELAY"; fail "the relay did not stop in 30 s"; }
    sleep 0.1
  done
  wait "$RELAY" 2>/dev/null || true
  [ -s "$1.stats.json" ] || { cat "$1" >&2; fail "the relay left no counters in $1.stats.json"; }
}

# Runs pktgen with script $1 (log $2), more pktgen options after; bounded to 180 s.
run_pktgen() {
  local script=$1 log=$2; shift 2
  ip netns exec "$NS" timeout -s KILL 180 "$PKTGEN" -l 0,1 --no-huge -m 3072 --no-pci --no-shconf --log-level=error \
    --file-prefix="pg$$" --vdev=net_af_packet0,iface=pg0,$RING --vdev=net_af_packet1,iface=pg1,$RING \
    -- -P -m "1.[0-1]" "$@" -f "$ROOT/bench/pktgen/$script" </dev/null >"$log" 2>&1 &
  local pg=$!; PIDS+=("$pg")
  wait "$pg" || true
  grep -a "relay-pktgen:" "$log" | sed 's/^/    /' || true
  grep -aq "relay-pktgen: .* done" "$log" || { tail -40 "$log" >&2; fail "pktgen did not finish $script (log $log)"; }
}

# Each CSV row: something sent, at least 95% of it received (low rates on veth).
check_csv() {
  local csv=$1 rows=$2
  head -1 "$csv" | grep -q '^mode,frame_size,rate_percent,seconds,tx_packets,rx_packets' || fail "$csv has no header"
  [ "$(tail -n +2 "$csv" | wc -l)" = "$rows" ] || { cat "$csv" >&2; fail "$csv has not $rows rows"; }
  tail -n +2 "$csv" | awk -F, '{ if ($5 < 1000 || $6 < 0.95 * $5) { print "bad row: " $0; bad = 1 } } END { exit bad }' >&2 \
    || fail "a step of $csv lost more than 5% or sent nothing"
}

# A counter of the relay's final statistics ($2: the counter's name, $1: the file).
counter() { grep -o "\"$2\": *[0-9]*" "$1" | head -1 | grep -o '[0-9]*$' || echo 0; }

# The relay's counters $1: every one of the $2 calls received on leg a (pktgen's flows
# covered them all), nothing dropped for a reason other than the kernel's own chatter.
check_relay() {
  local stats=$1 calls=$2 idle
  idle=$(grep -A1 '"a": {' "$stats" | grep -c '"rx_packets": 0,' || true)
  [ "$idle" = 0 ] || fail "$idle of $calls calls received nothing on leg a ($stats)"
  [ "$(grep -c '"a": {' "$stats")" = "$calls" ] || fail "$stats does not list $calls calls"
  if grep -E '"(malformed|truncated|bad_checksum|unknown_flow|unexpected_source|no_destination|no_route|neighbour_unresolved|auth_failed|replayed|too_old|srtp_malformed|mki_mismatch|key_expired|too_big|tx_full|handoff_full)": [1-9]' "$stats" >&2; then
    fail "the relay dropped packets of pktgen's flows ($stats)"
  fi
  [ "$(counter "$stats" forwarded)" -gt 0 ] || fail "the relay forwarded nothing"
}

say "RTP range: 512 streams, two rates"
"$BIN/relay-gen" sessions --streams 512 --suite rtp --out "$OUT/rtp.json" >/dev/null
"$BIN/relay-gen" pktgen-flows --sessions "$OUT/rtp.json" --relay-mac "${RELAY_MACS[0]}" --out "$OUT/flows.lua"
start_relay "$OUT/rtp.json" "$OUT/relay-rtp.log" a
PKTGEN_FLOWS="$OUT/flows.lua" PKTGEN_RATES=0.2,0.5 PKTGEN_SECONDS=2 PKTGEN_CSV="$OUT/rtp.csv" \
  run_pktgen rtp-range.lua "$OUT/pktgen-rtp.log"
stop_relay "$OUT/relay-rtp.log"
check_csv "$OUT/rtp.csv" 2
check_relay "$OUT/relay-rtp.log.stats.json" 512

say "SRTP capture: 512 streams, 60 packets each, two rates"
"$BIN/relay-gen" sessions --streams 512 --out "$OUT/srtp.json" >/dev/null
"$BIN/relay-gen" pcap --sessions "$OUT/srtp.json" --relay-mac "${RELAY_MACS[0]}" --per-stream 60 --out "$OUT/srtp.pcap" >/dev/null
start_relay "$OUT/srtp.json" "$OUT/relay-srtp.log" b
PKTGEN_CAPTURE_PACKETS=30720 PKTGEN_RATES=0.2,0.5 PKTGEN_FRAME_SIZE=228 PKTGEN_CSV="$OUT/srtp.csv" \
  run_pktgen srtp-pcap.lua "$OUT/pktgen-srtp.log" -s "0:$OUT/srtp.pcap"
stop_relay "$OUT/relay-srtp.log"
check_csv "$OUT/srtp.csv" 2
check_relay "$OUT/relay-srtp.log.stats.json" 512
[ "$(counter "$OUT/relay-srtp.log.stats.json" srtp)" -gt 0 ] || fail "the relay re-keyed no SRTP"
say "pktgen's scripts ran against the relay: RTP range and SRTP capture relayed"
