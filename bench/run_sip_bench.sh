#!/usr/bin/env bash
# New calls per second over SIP/TLS through relay-control, and through the reference a user
# would otherwise pick (Kamailio with TLS + rtpengine, Debian's packages), in one run on this
# machine. Needs root (a network namespace, core pinning) and at least 2 CPUs.
#
#   bench/run_sip_bench.sh                 # relay-control + relay-dataplane, then the reference
#   bench/run_sip_bench.sh --seconds 10    # any `sip-bench run` option (see --help)
#   bench/run_sip_bench.sh --no-reference  # relay-control only
#
# The reference's packages (kamailio, kamailio-tls-modules, rtpengine-daemon) are installed
# with apt-get if missing. Figures and the command go to bench/RESULTS.md.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"

reference=--reference
args=()
for a in "$@"; do
    case "$a" in
    --no-reference) reference= ;;
    *) args+=("$a") ;;
    esac
done

if [ "$(id -u)" != 0 ]; then
    echo "run_sip_bench.sh: needs root (network namespace, taskset, SCHED_IDLE)" >&2
    exit 1
fi

if [ -n "$reference" ]; then
    missing=()
    command -v kamailio >/dev/null || missing+=(kamailio)
    [ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ] || missing+=(kamailio-tls-modules)
    command -v rtpengine >/dev/null || missing+=(rtpengine-daemon)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing the reference: ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
fi

(cd "$here" && nice -n 10 cargo build --release -p relay-bench -p relay-control -p relay-dataplane)
exec "$target/release/sip-bench" run $reference --bin-dir "$target/release" \
    --reference-dir "$here/bench/reference" "${args[@]}"
