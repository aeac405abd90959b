//! Raw bindings to the system DPDK (Debian 12: DPDK 22.11 LTS), generated at build time.
//!
//! Everything here is `unsafe` FFI. The rest of the workspace reaches DPDK only through the
//! safe I/O layer in `relay-dataplane` (`relay_dataplane::dpdk`), which turns null pointers and
//! negative return codes into `Result` in one place.
//!
//! What is here besides bindgen's output:
//! * C shims for DPDK's `static inline` functions (`rte_eth_rx_burst`, `rte_pktmbuf_alloc`,
//!   `rte_lcore_id`, ...). bindgen exposes them under their own names; the shims are compiled
//!   by `build.rs`.
//! * `relay_rte_errno()`, `relay_pktmbuf_mtod()`, `relay_pktmbuf_data_len()` and
//!   `relay_pktmbuf_pkt_len()`: functions for what DPDK defines as macros.
//! * The `RTE_BIT64(n)` offload and RSS flags as typed `u64` constants, which bindgen does not
//!   emit.
//!
//! If DPDK is missing the build stops with one line that says to run `scripts/install.sh`.

#![allow(
    // bindgen output follows C naming and carries no docs.
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    missing_docs,
    unreachable_pub,
    trivial_numeric_casts,
    unused_qualifications,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc,
    rustdoc::all
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// Offload and RSS flags that DPDK defines with `RTE_BIT64(n)`.
pub mod flags {
    include!(concat!(env!("OUT_DIR"), "/bit_flags.rs"));
}
pub use flags::*;

// Layouts the data plane relies on: an mbuf is two cache lines, cache-line aligned.
const _: () = assert!(core::mem::size_of::<rte_mbuf>() == 128);
const _: () = assert!(core::mem::align_of::<rte_mbuf>() == 64);
const _: () = assert!(core::mem::size_of::<rte_ether_hdr>() == 14);
const _: () = assert!(core::mem::size_of::<rte_ipv4_hdr>() == 20);
const _: () = assert!(core::mem::size_of::<rte_udp_hdr>() == 8);
const _: () = assert!(core::mem::size_of::<rte_eth_stats>() >= 8 * 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_flags_match_ethdev_header() {
        // RTE_ETH_RSS_NONFRAG_IPV4_UDP is RTE_BIT64(5) in DPDK 22.11.
        assert_eq!(RTE_ETH_RSS_NONFRAG_IPV4_UDP, 1 << 5);
        assert_eq!(RTE_ETH_RSS_NONFRAG_IPV6_UDP, 1 << 11);
        // Composite flags are ORs of the single ones.
        assert_ne!(RTE_ETH_RSS_UDP & RTE_ETH_RSS_NONFRAG_IPV4_UDP, 0);
        assert_eq!(RTE_ETH_TX_OFFLOAD_UDP_CKSUM, 1 << 2);
        assert_eq!(
            RTE_ETH_RX_OFFLOAD_CHECKSUM & RTE_ETH_RX_OFFLOAD_UDP_CKSUM,
            1 << 2
        );
    }

    #[test]
    fn version_is_at_least_22_11() {
        // SAFETY: rte_version_year/month only read compiled-in constants; no EAL needed.
        let (year, month) = unsafe { (rte_version_year(), rte_version_month()) };
        assert!((year, month) >= (22, 11), "DPDK {year}.{month}");
    }
}
