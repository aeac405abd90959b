#!/usr/bin/env bash
# Runs the whole test suite, as CI does (.ci/run calls exactly this). Installs what it needs
# first: the OS packages (DPDK, clang, libsrtp2, ...) and a Rust toolchain if cargo is missing.
#
# DPDK tests run on virtual devices without hugepages or NICs, each scenario in its own
# process; the installer tests use a network namespace they create and remove themselves.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install.sh --packages --test-deps
export PATH="$HOME/.cargo/bin:$PATH"
# A one-off build gains nothing from incremental state, which is a large part of a debug
# target directory; CI machines' disks can be small.
export CARGO_INCREMENTAL=0

echo "== format"
cargo fmt --all --check
echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
echo "== cargo test"
cargo test --workspace --locked
echo "== SRTP engine and relay core on the portable paths (SIMD off)"
RELAY_SRTP_NO_SIMD=1 cargo test --locked -p relay-srtp -p relay-proto -p relay-bench --test libsrtp_interop --test burst --test robustness --test fuzz_corpus --lib
echo "== scripts/bench.sh --quick (the comparison report and its plots)"
bash scripts/tests/bench_quick_test.sh
echo "== pktgen-dpdk's scripts (bench/pktgen/) against the relay"
if [ "$(id -u)" = 0 ]; then
  bash scripts/tests/pktgen_test.sh
else
  sudo --preserve-env=PATH,CARGO_TARGET_DIR,CARGO_INCREMENTAL bash scripts/tests/pktgen_test.sh
fi
echo "== installer"
if [ "$(id -u)" = 0 ]; then
  bash scripts/tests/install_test.sh
else
  sudo --preserve-env=PATH bash scripts/tests/install_test.sh
fi
