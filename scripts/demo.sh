#!/usr/bin/env bash
# Runs the relay's main job on its embedded default: virtual DPDK devices (net_ring), no NIC,
# no hugepages. Installs what it needs first. Extra arguments go to `relay-dataplane demo`
# (e.g. `--calls 5000 --packets 5000000`, or EAL arguments after `--`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install.sh --packages
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p relay-dataplane
exec target/release/relay-dataplane demo "$@"
