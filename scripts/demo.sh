#!/usr/bin/env bash
# Runs the appliance's main job on its embedded default, on one machine without a NIC or
# hugepages: relay-control and relay-dataplane in network namespaces on virtual DPDK devices,
# with built-in callers placing calls over SIP/TLS with SRTP through them (relay-demo; see
# the README). Installs what it needs first; needs root for the namespaces (uses sudo).
#
#   scripts/demo.sh                                   # 20 calls, 10 s of media each
#   scripts/demo.sh --calls 100 --duration 30 --cps 20 --workers 2 --operator-media rtp
#   scripts/demo.sh dataplane --calls 5000 --packets 5000000   # the data plane alone
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install.sh --packages
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p relay-dataplane -p relay-control -p relay-demo
bin="${CARGO_TARGET_DIR:-target}/release"
if [ "${1:-}" = dataplane ]; then
    shift
    exec "$bin/relay-dataplane" demo "$@"    # no root needed: ring devices in one process
fi
if [ "$(id -u)" = 0 ]; then
    exec "$bin/relay-demo" "$@"
fi
exec sudo "$bin/relay-demo" "$@"
