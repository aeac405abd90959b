//! Benchmarks and the traffic generator. Figures and the commands that produced them are in
//! `bench/RESULTS.md`; every throughput figure is a ratio against a reference measured in the
//! same run (e.g. `dpdk-testpmd` on the same virtual device).

#![forbid(unsafe_code)]
