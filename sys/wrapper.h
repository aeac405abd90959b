/*
 * The DPDK surface the relay uses. bindgen reads this file; with
 * wrap_static_fns(true) it also emits C shims for every static inline
 * function reachable from here (rte_eth_rx_burst, rte_pktmbuf_alloc, ...),
 * which build.rs compiles with cc.
 */
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_ring.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_eth_ring.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>
#include <rte_arp.h>
#include <rte_version.h>

/* rte_errno is a macro over a per-lcore TLS variable: expose it as a function. */
static inline int relay_rte_errno(void) { return rte_errno; }

/* rte_pktmbuf_mtod is a macro: expose the start of packet data. */
static inline void *relay_pktmbuf_mtod(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, void *); }

/* rte_pktmbuf_data_len / pkt_len are macros over struct fields. */
static inline uint16_t relay_pktmbuf_data_len(const struct rte_mbuf *m) { return rte_pktmbuf_data_len(m); }
static inline uint32_t relay_pktmbuf_pkt_len(const struct rte_mbuf *m) { return rte_pktmbuf_pkt_len(m); }

/* RTE_MBUF_DEFAULT_BUF_SIZE is a compound macro bindgen cannot evaluate. */
static inline uint16_t relay_mbuf_default_buf_size(void) { return RTE_MBUF_DEFAULT_BUF_SIZE; }

