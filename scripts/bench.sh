#!/usr/bin/env bash
# The comparison run (issue 15): in one invocation on this machine, relay-gen and
# relay-dataplane as two DPDK processes joined by net_memif, each on its own core, and the
# references beside them:
#   1. the SRTP engine's burst re-key and dpdk-test-crypto-perf with ipsec_mb (srtp-bench);
#   2. the I/O ceiling: dpdk-testpmd forwarding relay-gen's SRTP over the same memif links;
#   3. the relay's NDR and PDR (RFC 2544 search) for SRTP re-key (AES_CM_128_HMAC_SHA1_80)
#      and RTP->RTP at 1 thousand, 100 thousand and 1 million streams;
#   4. the same SRTP streams' NDR under an equal-rate flood of unknown-flow and
#      forged-tag packets, and the worker's busy time at one fixed rate without and with
#      the flood (what an attack packet costs);
#   5. rtpengine (Debian's rtpengine-daemon, userspace, one thread on the relay's cpu)
#      re-keying the same kind of SRTP streams over loopback UDP: the relay a user would
#      otherwise pick (installed with apt-get when missing and run as root; --no-rtpengine
#      skips it);
# then bench-report writes a RESULTS.md section and SVG plots (throughput against streams,
# latency at the NDR, the searches' trials).
#
#   scripts/bench.sh                 # full run: bench/results/<time>/, appended to bench/RESULTS.md
#   scripts/bench.sh --quick         # a small run for CI (report and plots in a temporary folder)
#   options: --out DIR  --debug-build (use target/debug: no release build)
#            --no-append / --append (to bench/RESULTS.md; full runs append by default)
#            --streams "1000 100000"  (overrides the stream counts)  --no-rtpengine
#
# Needs: DPDK 22.11 (dpdk-testpmd, dpdk-test-crypto-perf: package dpdk) and two CPUs; no
# hugepages, NICs or root (virtual devices, --no-huge). Processes are stopped by PID; the
# sessions files (they hold keys) are removed at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"

QUICK=0 PROFILE=release OUT="" APPEND="" STREAMS_OVERRIDE="" RTPENGINE=1
COMMAND="scripts/bench.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --debug-build) PROFILE=debug ;;
    --out) OUT=$2; shift ;;
    --no-append) APPEND=0 ;;
    --append) APPEND=1 ;;
    --streams) STREAMS_OVERRIDE=$2; shift ;;
    --no-rtpengine) RTPENGINE=0 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

START=$(date +%s)
say() { printf '[bench %4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }
die() { say "FAILED: $*" >&2; exit 1; }

if [ "$QUICK" = 1 ]; then
  STREAMS=(200); FLOOD_STREAMS=200
  TRIAL=0.2 RES=0.25 MAX_TRIALS=3 MIN_PPS=2000 MAX_PPS=40000 ENGINE_PACKETS=2000 ENGINE_PASSES=1 ENGINE_ROUNDS=1 FIXED_SECONDS=1
  [ -n "$OUT" ] || OUT=$(mktemp -d /tmp/relay-bench.XXXXXX)
  [ -n "$APPEND" ] || APPEND=0
else
  STREAMS=(1000 100000 1000000); FLOOD_STREAMS=1000
  TRIAL=1 RES=0.01 MAX_TRIALS=10 MIN_PPS=100000 MAX_PPS=6000000 ENGINE_PACKETS=1000000 ENGINE_PASSES=1 ENGINE_ROUNDS=7 FIXED_SECONDS=5
  [ -n "$OUT" ] || OUT="bench/results/$(date -u +%Y%m%dT%H%M%SZ)"
  [ -n "$APPEND" ] || APPEND=1
fi
if [ -n "$STREAMS_OVERRIDE" ]; then
  read -r -a STREAMS <<<"$STREAMS_OVERRIDE"
  FLOOD_STREAMS=${STREAMS[0]}
fi
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)

CPUS=$(nproc)
GEN_CPU=0 RELAY_CPU=1
if [ "$CPUS" -lt 2 ]; then
  say "warning: one CPU: the generator and the relay share it (figures are not comparable)"
  RELAY_CPU=0
fi
RSIZE=14 # memif rings of 2^14 slots: the default 1024 lose packets when a vCPU pauses

# -- build ------------------------------------------------------------------------------
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ "$PROFILE" = release ]; then
  say "building (release): relay-dataplane, relay-gen, srtp-bench, bench-report"
  cargo build --release --locked -q -p relay-dataplane -p relay-gen-dpdk -p relay-bench -p relay-bench-report --bins
  BIN=$TARGET/release
else
  say "building (debug): relay-dataplane, relay-gen, srtp-bench, bench-report"
  cargo build --locked -q -p relay-dataplane -p relay-gen-dpdk -p relay-bench -p relay-bench-report --bins
  BIN=$TARGET/debug
fi
for b in relay-dataplane relay-gen srtp-bench bench-report; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing after the build"
done
command -v dpdk-testpmd >/dev/null || die "dpdk-testpmd is missing: apt-get install dpdk (scripts/install.sh --packages)"

# -- clean-up: every process by its PID, the keys' files ---------------------------------
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then kill -INT "$p" 2>/dev/null || true; fi
  done
  sleep 0.5
  for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
  done
  rm -f "$OUT"/sessions-*.json
}
trap cleanup EXIT

RUN_ID=$$
EAL_COMMON=(--no-huge -m 512 --no-pci --no-shconf --log-level=error)
GEN_MACS=(02:00:00:00:00:10 02:00:00:00:00:20)
RELAY_MACS=(02:00:00:00:01:01 02:00:00:00:01:02)
sock() { echo "$OUT/logs/memif-$1-$RUN_ID.sock"; }

# The generator's EAL (memif clients on cpu GEN_CPU), for run number $1.
gen_eal() {
  echo "${EAL_COMMON[*]} -l $GEN_CPU --file-prefix=bg$RUN_ID$1" \
    "--vdev=net_memif0,role=client,socket=$(sock "$1a"),rsize=$RSIZE,mac=${GEN_MACS[0]}" \
    "--vdev=net_memif1,role=client,socket=$(sock "$1b"),rsize=$RSIZE,mac=${GEN_MACS[1]}"
}

# relay-gen ndr over run $1's links with sessions $2, JSON to $3, more options after.
gen_ndr() {
  local run=$1 sessions=$2 json=$3; shift 3
  # shellcheck disable=SC2046 # the EAL words are split on purpose
  "$BIN/relay-gen" ndr --sessions "$sessions" --tx-port net_memif0 --rx-port net_memif1 \
    --relay-mac "${RELAY_MACS[0]}" --min-pps "$MIN_PPS" --max-pps "${NDR_MAX_PPS:-$MAX_PPS}" \
    --resolution "$RES" --max-trials "$MAX_TRIALS" --trial-seconds "$TRIAL" \
    --json "$json" "$@" -- $(gen_eal "$run")
}

# Waits until file $1 has a line matching $2 (process $3 must stay alive), at most $4 s.
wait_for() {
  local file=$1 pattern=$2 pid=$3 limit=$4 i=0
  while ! grep -q "$pattern" "$file" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { tail -20 "$file" >&2; die "process $pid ended before saying '$pattern' ($file)"; }
    i=$((i + 1)); [ "$i" -le $((limit * 10)) ] || die "no '$pattern' in $file after ${limit}s"
    sleep 0.1
  done
}

# Waits for process $1 to end by itself within $2 s, else stops it.
reap() {
  local pid=$1 limit=$2 i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt $((limit * 10)) ]; then kill -INT "$pid" 2>/dev/null || true; sleep 1; kill -KILL "$pid" 2>/dev/null || true; fi
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || true
}

if [ "$RTPENGINE" = 1 ] && ! command -v rtpengine >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing the reference relay: rtpengine-daemon"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rtpengine-daemon >"$OUT/logs/apt-rtpengine.log" 2>&1 \
      || { say "rtpengine-daemon did not install ($OUT/logs/apt-rtpengine.log): no reference relay row"; RTPENGINE=0; }
  else
    say "rtpengine is not installed (apt-get install rtpengine-daemon): no reference relay row"
    RTPENGINE=0
  fi
fi

STEPS=$(( 4 + 2 * ${#STREAMS[@]} + 1 + RTPENGINE ))
STEP=0
step() { STEP=$((STEP + 1)); say "step $STEP/$STEPS: $*"; }

# -- 1. the engine and ipsec_mb ----------------------------------------------------------
step "SRTP engine burst re-key and dpdk-test-crypto-perf (ipsec_mb), AES_CM_128_HMAC_SHA1_80"
ENGINE_ARGS=(--suite AES_CM_128_HMAC_SHA1_80 --no-libsrtp --cpu "$RELAY_CPU" --packets "$ENGINE_PACKETS" --passes "$ENGINE_PASSES" --rounds "$ENGINE_ROUNDS" --json "$OUT/engine.json")
command -v dpdk-test-crypto-perf >/dev/null || { say "dpdk-test-crypto-perf missing: engine without its reference"; ENGINE_ARGS+=(--no-dpdk); }
"$BIN/srtp-bench" "${ENGINE_ARGS[@]}" >"$OUT/logs/engine.log" 2>&1 || { tail -20 "$OUT/logs/engine.log" >&2; die "srtp-bench"; }
grep -E "rekey burst32|2 ops" "$OUT/logs/engine.log" | sed 's/^/    /'

# -- sessions files ----------------------------------------------------------------------
sessions_file() { # mode streams -> path (made once)
  local f="$OUT/sessions-$1-$2.json" suite=AES_CM_128_HMAC_SHA1_80
  [ "$1" = rtp ] && suite=rtp
  [ -f "$f" ] || "$BIN/relay-gen" sessions --streams "$2" --suite "$suite" --out "$f" >/dev/null
  echo "$f"
}

# -- 2. the I/O ceiling: testpmd forwarding over the same links ---------------------------
step "I/O ceiling: dpdk-testpmd (io forwarding, cpu $RELAY_CPU) over memif, ${STREAMS[0]} SRTP streams"
S=$(sessions_file srtp "${STREAMS[0]}")
RUN=t
TP_LOG="$OUT/logs/testpmd.log"
# (main lcore on the generator's CPU, asleep between statistics; forwarding on RELAY_CPU)
dpdk-testpmd "${EAL_COMMON[@]}" -l "$GEN_CPU,$RELAY_CPU" --main-lcore "$GEN_CPU" --file-prefix="bt$RUN_ID" \
  "--vdev=net_memif0,role=server,socket=$(sock ${RUN}a),rsize=$RSIZE" \
  "--vdev=net_memif1,role=server,socket=$(sock ${RUN}b),rsize=$RSIZE" \
  -- --forward-mode=io --stats-period=5 --total-num-mbufs=65536 --rxd=4096 --txd=4096 \
  </dev/null >"$TP_LOG" 2>&1 &
TP=$!; PIDS+=("$TP")
wait_for "$TP_LOG" "Port statistics\|Checking link statuses" "$TP" 30
gen_ndr "$RUN" "$S" "$OUT/loop.json" --loopback --verify-every 16 >"$OUT/logs/loop-gen.log" 2>&1 \
  || { tail -20 "$OUT/logs/loop-gen.log" >&2; die "relay-gen over testpmd"; }
tail -1 "$OUT/logs/loop-gen.log" | sed 's/^/    /'
kill -INT "$TP" 2>/dev/null || true
reap "$TP" 10
# The most SRTP the generator sent in one second (its first trial asks for MAX_PPS): the
# SRTP searches of the relay start a quarter above it rather than at MAX_PPS, so their ten
# trials split a range the generator can offer (finer NDRs).
GEN_SRTP_PPS=$(awk -v t="$TRIAL" '$1 == "trial" { for (i = 1; i < NF; i++) if ($i == "offered") { r = $(i + 1) / t; if (r > m) m = r } } END { printf "%d", m }' "$OUT/logs/loop-gen.log")
SRTP_MAX_PPS=$(( GEN_SRTP_PPS * 5 / 4 ))
if [ "$SRTP_MAX_PPS" -lt $(( MIN_PPS * 2 )) ] || [ "$SRTP_MAX_PPS" -gt "$MAX_PPS" ]; then SRTP_MAX_PPS=$MAX_PPS; fi
say "    the generator offered at most $GEN_SRTP_PPS SRTP pps: SRTP searches up to $SRTP_MAX_PPS pps"

# -- 3./4. the relay ---------------------------------------------------------------------
# relay_ndr MODE STREAMS [flood]: one relay process, one search.
# start_relay MODE STREAMS NAME RUN STATS: the relay on run RUN's links with MODE's sessions
# of STREAMS streams, its log logs/NAME.log, its final counters to STATS ("" for none); sets
# RELAY (its PID) and RELAY_SESSIONS (the file) once it has installed the sessions.
start_relay() {
  local mode=$1 n=$2 name=$3 run=$4 stats_file=$5 s addrs log stats=()
  s=$(sessions_file "$mode" "$n")
  RELAY_SESSIONS=$s
  addrs=$(( (n + 28999) / 29000 ))
  log="$OUT/logs/$name.log"
  [ -z "$stats_file" ] || stats=(--stats-json "$stats_file")
  "$BIN/relay-dataplane" run \
    --port "net_memif0,ipv4=198.18.0.1/16,addrs=$addrs,mac=${RELAY_MACS[0]}" \
    --port "net_memif1,ipv4=198.19.0.1/16,addrs=$addrs,mac=${RELAY_MACS[1]}" \
    --sessions "$s" --idle-exit-ms 2000 "${stats[@]}" -- \
    "${EAL_COMMON[@]}" -l "$RELAY_CPU" --file-prefix="br$RUN_ID$run" \
    "--vdev=net_memif0,role=server,socket=$(sock "${run}a"),rsize=$RSIZE,mac=${RELAY_MACS[0]}" \
    "--vdev=net_memif1,role=server,socket=$(sock "${run}b"),rsize=$RSIZE,mac=${RELAY_MACS[1]}" \
    >"$log" 2>&1 &
  RELAY=$!; PIDS+=("$RELAY")
  wait_for "$log" "^installed" "$RELAY" 300
}

# relay_ndr MODE STREAMS [flood]: one relay process, one search.
relay_ndr() {
  local mode=$1 n=$2 flood=${3:-0} name run stats="" extra=()
  name="relay-$mode-$n"; [ "$flood" = 0 ] || name="$name-flood"
  run="r$STEP"
  # Final counters only where they stay small (they list every call).
  [ "$n" -gt 20000 ] || stats="$OUT/$name.stats.json"
  start_relay "$mode" "$n" "$name" "$run" "$stats"
  [ "$flood" = 0 ] || extra=(--flood "$flood")
  local NDR_MAX_PPS=$MAX_PPS # (gen_ndr reads it)
  [ "$mode" = rtp ] || NDR_MAX_PPS=$SRTP_MAX_PPS
  # Every 8th packet opened (tag, stamp, latency), the rest placed by sequence number: the
  # generator must outrun the relay.
  gen_ndr "$run" "$RELAY_SESSIONS" "$OUT/$name.json" --verify-every 8 "${extra[@]}" >"$OUT/logs/$name-gen.log" 2>&1 \
    || { tail -20 "$OUT/logs/$name-gen.log" >&2; die "relay-gen against the relay ($name)"; }
  tail -1 "$OUT/logs/$name-gen.log" | sed 's/^/    /'
  reap "$RELAY" 30
}

# relay_fixed STREAMS FLOOD RATE: the SRTP streams offered at RATE for FIXED_SECONDS, with
# FLOOD attack packets per stream packet; the relay's counters (its worker's busy time) to
# fixed-flood<FLOOD>.stats.json, the generator's report to fixed-flood<FLOOD>.json.
relay_fixed() {
  local n=$1 flood=$2 rate=$3 name="fixed-flood$2" run="f$2$STEP"
  start_relay srtp "$n" "$name" "$run" "$OUT/$name.stats.json"
  # shellcheck disable=SC2046 # the EAL words are split on purpose
  "$BIN/relay-gen" run --sessions "$RELAY_SESSIONS" --tx-port net_memif0 --rx-port net_memif1 \
    --relay-mac "${RELAY_MACS[0]}" --rate "$rate" --seconds "$FIXED_SECONDS" --verify-every 8 \
    --flood "$flood" --json "$OUT/$name.json" -- $(gen_eal "$run") >"$OUT/logs/$name-gen.log" 2>&1 \
    || { tail -20 "$OUT/logs/$name-gen.log" >&2; die "relay-gen at a fixed rate ($name)"; }
  grep -E "^streams" "$OUT/logs/$name-gen.log" | head -1 | sed 's/^/    /'
  reap "$RELAY" 30
}

for n in "${STREAMS[@]}"; do
  step "relay NDR, SRTP re-key, $n streams"
  relay_ndr srtp "$n"
  step "relay NDR, RTP to RTP, $n streams"
  relay_ndr rtp "$n"
  rm -f "$OUT/sessions-srtp-$n.json" "$OUT/sessions-rtp-$n.json"
done
step "relay NDR under attack: SRTP, $FLOOD_STREAMS streams, one attack packet per stream packet"
relay_ndr srtp "$FLOOD_STREAMS" 1
# What an attack packet costs the worker, from its own busy time: the same stream rate (three
# quarters of the flooded NDR, which both runs sustain) without and with the flood. (The NDRs
# alone cannot say: with the flood the generator makes two frames per stream packet and may
# be the one at its limit.)
FIXED_PPS=$(grep -m1 '"ndr_pps"' "$OUT/relay-srtp-$FLOOD_STREAMS-flood.json" | grep -oE '[0-9]+' | head -1)
FIXED_PPS=$(( ${FIXED_PPS:-0} * 3 / 4 ))
[ "$FIXED_PPS" -ge "$MIN_PPS" ] || FIXED_PPS=$MIN_PPS
step "what an attack packet costs: $FLOOD_STREAMS SRTP streams at $FIXED_PPS pps for ${FIXED_SECONDS} s, without and with the flood"
relay_fixed "$FLOOD_STREAMS" 0 "$FIXED_PPS"
relay_fixed "$FLOOD_STREAMS" 1 "$FIXED_PPS"

# -- 5. the reference relay: rtpengine over loopback UDP ----------------------------------
RTPENGINE_VERSION="not measured (--no-rtpengine, or not installed)"
if [ "$RTPENGINE" = 1 ]; then
  step "rtpengine (userspace, one thread on cpu $RELAY_CPU) re-keying ${FLOOD_STREAMS} SRTP streams over loopback UDP"
  RTPENGINE_VERSION=$(rtpengine --version 2>&1 | sed -n 's/^Version: *//p' | head -1)
  NG_PORT=$(( 22300 + RUN_ID % 500 ))
  # Searched up to 1 Mpps at most: beyond what a generator on kernel sockets offers.
  RTPENGINE_MAX_PPS=$SRTP_MAX_PPS
  [ "$RTPENGINE_MAX_PPS" -le 1000000 ] || RTPENGINE_MAX_PPS=1000000
  log="$OUT/logs/rtpengine.log"
  taskset -c "$RELAY_CPU" rtpengine --config-file="$ROOT/bench/reference/rtpengine-media.conf" \
    --config-section=relay-bench --listen-ng="127.0.0.1:$NG_PORT" </dev/null >"$log" 2>&1 &
  RTPE=$!; PIDS+=("$RTPE")
  sleep 1
  kill -0 "$RTPE" 2>/dev/null || { tail -20 "$log" >&2; die "rtpengine did not start"; }
  taskset -c "$GEN_CPU" "$BIN/relay-gen" rtpengine --ng "127.0.0.1:$NG_PORT" --streams "$FLOOD_STREAMS" \
    --min-pps "$MIN_PPS" --max-pps "$RTPENGINE_MAX_PPS" --resolution "$RES" --max-trials "$MAX_TRIALS" \
    --trial-seconds "$TRIAL" --verify-every 8 --json "$OUT/rtpengine-srtp-$FLOOD_STREAMS.json" \
    >"$OUT/logs/rtpengine-gen.log" 2>&1 || { tail -20 "$OUT/logs/rtpengine-gen.log" >&2; die "relay-gen against rtpengine"; }
  tail -1 "$OUT/logs/rtpengine-gen.log" | sed 's/^/    /'
  kill -TERM "$RTPE" 2>/dev/null || true
  reap "$RTPE" 10
fi

# -- the report --------------------------------------------------------------------------
step "report and plots"
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'aes|pclmulqdq|vaes|vpclmulqdq|sha_ni|avx2|avx512f|avx512bw|avx512vl|hypervisor' | tr '\n' ' ' | sed 's/ $//')
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "command=$COMMAND"
  echo "seconds=$(( $(date +%s) - START ))"
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "dpdk=$(pkg-config --modversion libdpdk 2>/dev/null || echo unknown)"
  echo "rustc=$(rustc --version 2>/dev/null || echo unknown)"
  echo "profile=$PROFILE"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "cpus=$CPUS"
  echo "flags=$flags"
  echo "gen_cpu=$GEN_CPU"
  echo "relay_cpu=$RELAY_CPU"
  echo "memif_rsize=$RSIZE"
  echo "trial_seconds=$TRIAL"
  echo "quick=$([ "$QUICK" = 1 ] && echo yes || echo no)"
  echo "rtpengine=$RTPENGINE_VERSION"
} >"$OUT/meta.txt"
REPORT_ARGS=("$OUT")
if [ "$APPEND" = 1 ]; then
  REPORT_ARGS+=(--append-to "$ROOT/bench/RESULTS.md" --plots-link "${OUT#"$ROOT/bench/"}")
fi
"$BIN/bench-report" "${REPORT_ARGS[@]}"
# The relay's final counters list every call (a megabyte each): bench-report kept the
# worker's totals it uses beside them (*.worker.json).
[ "$QUICK" = 1 ] || rm -f "$OUT"/*.stats.json
say "done in $(( $(date +%s) - START )) s: $OUT/report.md"
