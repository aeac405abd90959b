#!/usr/bin/env bash
# `scripts/bench.sh --quick` as CI runs it: every step runs (engine and ipsec_mb, the
# testpmd ceiling, the relay's searches with and without the flood) and the report and its
# plots come out with their content. Figures are not asserted (a debug build on a shared
# machine); that the searches found a rate and the flooded streams were verified is.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out=$(mktemp -d /tmp/relay-bench-test.XXXXXX)
trap 'rm -rf "$out"' EXIT
bash scripts/bench.sh --quick --debug-build --out "$out"

fail() { echo "bench_quick_test: $*" >&2; exit 1; }
report="$out/report.md"
[ -s "$report" ] || fail "no report"
for want in "## Throughput runs over memif" "CPU: " "flags: " "| I/O ceiling: \`dpdk-testpmd\`" \
  "| relay, SRTP re-key (AES_CM_128_HMAC_SHA1_80) | 200 |" "| relay, RTP to RTP | 200 |" \
  "| SRTP engine alone" "Latency at the NDR" "Under attack" "The relay's drop counters" \
  "ns of worker time per attack packet" \
  "throughput.svg" "latency.svg" "ndr-trace.svg"; do
  grep -qF -- "$want" "$report" || { cat "$report" >&2; fail "the report lacks: $want"; }
done
for plot in throughput latency ndr-trace; do
  f="$out/$plot.svg"
  [ -s "$f" ] || fail "no $plot.svg"
  grep -q "<svg" "$f" || fail "$plot.svg is not SVG"
  grep -qE "<polyline|<path" "$f" || fail "$plot.svg has no lines"
  grep -q "<text" "$f" || fail "$plot.svg has no labels"
done
# The reference relay's row wherever rtpengine is (bench.sh installs it when run as root).
if command -v rtpengine >/dev/null; then
  grep -qF "| rtpengine " "$report" || { cat "$report" >&2; fail "rtpengine is installed but the report has no rtpengine row"; }
  grep -qF "| rtpengine SRTP |" "$report" || fail "no latency row for rtpengine"
  grep -q '"ndr_pps": [1-9]' "$out"/rtpengine-srtp-*.json || fail "the search against rtpengine found no rate"
fi
grep -q "relay, SRTP" "$out/throughput.svg" || fail "the throughput plot has no legend for the relay"
# Each search ran trials and found a rate above its floor, with no verification failures.
python3 - "$out" <<'PY'
import json, sys, glob
out = sys.argv[1]
files = sorted(glob.glob(out + "/relay-*[0-9].json") + glob.glob(out + "/relay-*-flood.json") + [out + "/loop.json"])
assert len(files) == 4, files
for f in files:
    s = json.load(open(f))
    assert s["trials"], f
    assert s["ndr_pps"] >= 2000, (f, s["ndr_pps"])
    assert all(t["failed"] == 0 for t in s["trials"] if t["loss_ratio"] == 0), f
flood = json.load(open(out + "/relay-srtp-200-flood.json"))
assert flood["flood"] == 1 and sum(t["attacks"] for t in flood["trials"]) > 0, flood
stats = json.load(open(out + "/relay-srtp-200-flood.stats.json"))
drops = stats["worker"]["drops"]
assert drops.get("auth_failed", 0) > 0 and drops.get("unknown_flow", 0) > 0, drops
engine = json.load(open(out + "/engine.json"))
assert any(r["operation"] == "rekey burst32" for r in engine), engine
print("bench_quick_test: report, plots and searches checked in", out)
PY
