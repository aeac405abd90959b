use std::ffi::CString;
use std::fmt;
use std::marker::PhantomData;

use relay_sys::{rte_eth_conf, rte_eth_dev_info, rte_eth_stats, rte_ether_addr};

use super::{check, Burst, DpdkError, Eal, PktMbufPool, BURST_SIZE};

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// How to set up a port.
#[derive(Debug, Clone)]
pub struct PortConfig {
    /// Receive queues (one per polling core).
    pub rx_queues: u16,
    /// Transmit queues (one per transmitting core).
    pub tx_queues: u16,
    /// Descriptors per receive queue (the driver may round it).
    pub rx_descriptors: u16,
    /// Descriptors per transmit queue (the driver may round it).
    pub tx_descriptors: u16,
    /// Receive frames for any destination MAC.
    pub promiscuous: bool,
    /// Let the NIC check received UDP checksums (`RTE_ETH_RX_OFFLOAD_UDP_CKSUM`), if it can.
    pub udp_checksum_check: bool,
    /// Let the NIC complete sent UDP checksums (`RTE_ETH_TX_OFFLOAD_UDP_CKSUM`), if it can.
    pub udp_checksum_offload: bool,
    /// With several receive queues: RSS on the UDP destination port only, with
    /// [`crate::rss::RSS_KEY`] and a redirection table of entry `i` to queue
    /// [`crate::rss::reta_queue`]`(i, queues)`.
    pub rss_udp_dst_port: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            promiscuous: false,
            udp_checksum_check: false,
            udp_checksum_offload: false,
            rss_udp_dst_port: false,
        }
    }
}

/// Counters of a port (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets the hardware dropped because no receive descriptor was free.
    pub rx_missed: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Receive failures because the mempool was empty.
    pub rx_no_mbuf: u64,
}

/// A configured and started ethdev port. Dropping it stops and closes the port (which is
/// also when `net_pcap` finishes writing its output file).
pub struct Port<'eal> {
    id: u16,
    reta_size: u16,
    rx_queues: u16,
    tx_queues: u16,
    rx_offloads: u64,
    tx_offloads: u64,
    _eal: PhantomData<&'eal Eal>,
    /// Queues are polled by the lcore that owns them, never shared between threads.
    _not_sync: PhantomData<*const ()>,
}

/// The UDP flow types hashed for RSS: both families, so every leg is steered alike.
const RSS_UDP: u64 =
    relay_sys::RTE_ETH_RSS_NONFRAG_IPV4_UDP | relay_sys::RTE_ETH_RSS_NONFRAG_IPV6_UDP;

/// Programs port `id`'s redirection table as [`relay_proto::rss::reta_queue`] says, so that
/// the NIC steers each destination port where [`relay_proto::rss::queue_for_port`] places its
/// calls; returns the table's size.
fn program_reta(id: u16, queues: u16) -> Result<u16, DpdkError> {
    let mut info = rte_eth_dev_info::default();
    // SAFETY: info is a valid out-pointer for the duration of the call.
    check("rte_eth_dev_info_get", unsafe {
        relay_sys::rte_eth_dev_info_get(id, &mut info)
    })?;
    let size = info.reta_size;
    let group = relay_sys::RTE_ETH_RETA_GROUP_SIZE as usize;
    let mut table: Vec<relay_sys::rte_eth_rss_reta_entry64> = (0..usize::from(size)
        .div_ceil(group))
        .map(|_| relay_sys::rte_eth_rss_reta_entry64 {
            mask: u64::MAX,
            reta: [0; 64],
        })
        .collect();
    for entry in 0..size {
        let (g, i) = (usize::from(entry) / group, usize::from(entry) % group);
        table[g].reta[i] = relay_proto::rss::reta_queue(entry, queues);
    }
    // SAFETY: table holds size / 64 groups (rounded up), as many as `size` entries need;
    // DPDK only reads it during the call.
    check("rte_eth_dev_rss_reta_update", unsafe {
        relay_sys::rte_eth_dev_rss_reta_update(id, table.as_mut_ptr(), size)
    })?;
    Ok(size)
}

impl<'eal> Port<'eal> {
    /// The port id of the device called `name` (e.g. `net_ring0`, or a PCI address).
    pub fn id_by_name(_eal: &'eal Eal, name: &str) -> Result<u16, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::NoSuchPort(name.to_owned()))?;
        let mut id = 0u16;
        // SAFETY: cname is NUL-terminated; id is a valid out-pointer.
        let rc = unsafe { relay_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if rc < 0 {
            return Err(DpdkError::NoSuchPort(name.to_owned()));
        }
        Ok(id)
    }

    /// What port `id` can do with queues, before it is configured.
    pub fn caps(_eal: &'eal Eal, id: u16) -> Result<PortCaps, DpdkError> {
        let mut info = rte_eth_dev_info::default();
        // SAFETY: info is a valid out-pointer for the duration of the call.
        check("rte_eth_dev_info_get", unsafe {
            relay_sys::rte_eth_dev_info_get(id, &mut info)
        })?;
        Ok(PortCaps {
            rss_udp: info.flow_type_rss_offloads & RSS_UDP == RSS_UDP
                && info.reta_size > 0
                && info.max_rx_queues > 1,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
        })
    }

    /// Configures port `id` with `config`, gives its receive queues buffers from `pool`, and
    /// starts it.
    pub fn open(
        _eal: &'eal Eal,
        id: u16,
        config: &PortConfig,
        pool: PktMbufPool<'eal>,
    ) -> Result<Port<'eal>, DpdkError> {
        // SAFETY: plain query of an integer property.
        if unsafe { relay_sys::rte_eth_dev_is_valid_port(id) } == 0 {
            return Err(DpdkError::NoSuchPort(format!("port {id}")));
        }
        let mut info = rte_eth_dev_info::default();
        // SAFETY: info is a valid out-pointer for the duration of the call.
        check("rte_eth_dev_info_get", unsafe {
            relay_sys::rte_eth_dev_info_get(id, &mut info)
        })?;

        let mut conf = rte_eth_conf::default();
        let flag = |wanted: bool, flag: u64| if wanted { flag } else { 0 };
        conf.rxmode.offloads = flag(
            config.udp_checksum_check,
            relay_sys::RTE_ETH_RX_OFFLOAD_UDP_CKSUM,
        ) & info.rx_offload_capa;
        conf.txmode.offloads = flag(
            config.udp_checksum_offload,
            relay_sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM,
        ) & info.tx_offload_capa;
        let mut rss_key = crate::rss::RSS_KEY;
        let rss = config.rss_udp_dst_port && config.rx_queues > 1;
        if rss {
            let wanted = RSS_UDP | relay_sys::RTE_ETH_RSS_L4_DST_ONLY;
            if info.flow_type_rss_offloads & RSS_UDP != RSS_UDP || info.reta_size == 0 {
                return Err(DpdkError::InvalidArgument(format!(
                    "port {id} cannot spread UDP over {} queues (no RSS): use one worker, or a NIC with RSS",
                    config.rx_queues
                )));
            }
            conf.rxmode.mq_mode = relay_sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_key = rss_key.as_mut_ptr();
            conf.rx_adv_conf.rss_conf.rss_key_len = rss_key.len() as u8;
            conf.rx_adv_conf.rss_conf.rss_hf =
                wanted & (info.flow_type_rss_offloads | relay_sys::RTE_ETH_RSS_L4_DST_ONLY);
        }
        // SAFETY: conf is a valid, initialised configuration; DPDK copies it.
        check("rte_eth_dev_configure", unsafe {
            relay_sys::rte_eth_dev_configure(id, config.rx_queues, config.tx_queues, &conf)
        })?;
        // From here on, a failure must close the port again: `port` does so on drop.
        let mut port = Port {
            id,
            reta_size: 0,
            rx_queues: config.rx_queues,
            tx_queues: config.tx_queues,
            rx_offloads: conf.rxmode.offloads,
            tx_offloads: conf.txmode.offloads,
            _eal: PhantomData,
            _not_sync: PhantomData,
        };

        let (mut rx_desc, mut tx_desc) = (config.rx_descriptors, config.tx_descriptors);
        // SAFETY: both are valid in/out pointers.
        check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            relay_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rx_desc, &mut tx_desc)
        })?;
        // SAFETY: plain query; -1 (SOCKET_ID_ANY) for devices without NUMA affinity.
        let socket = unsafe { relay_sys::rte_eth_dev_socket_id(id) } as u32;
        for q in 0..config.rx_queues {
            // SAFETY: a null rx_conf selects the driver's defaults; the pool outlives the
            // port because both borrow the Eal and pools are only freed by rte_eal_cleanup.
            check("rte_eth_rx_queue_setup", unsafe {
                relay_sys::rte_eth_rx_queue_setup(
                    id,
                    q,
                    rx_desc,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            })?;
        }
        for q in 0..config.tx_queues {
            let mut txconf = info.default_txconf;
            txconf.offloads = conf.txmode.offloads;
            // SAFETY: txconf is a valid configuration DPDK copies.
            check("rte_eth_tx_queue_setup", unsafe {
                relay_sys::rte_eth_tx_queue_setup(id, q, tx_desc, socket, &txconf)
            })?;
        }
        if config.promiscuous {
            // Not every virtual device supports it (-ENOTSUP); they receive everything anyway.
            // SAFETY: plain configuration call on a configured port.
            let _ = unsafe { relay_sys::rte_eth_promiscuous_enable(id) };
        }
        // SAFETY: the port is configured with all its queues set up.
        check("rte_eth_dev_start", unsafe {
            relay_sys::rte_eth_dev_start(id)
        })?;
        if rss {
            port.reta_size = program_reta(id, config.rx_queues)?;
        }
        Ok(port)
    }

    /// The port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The device's name (e.g. `net_ring0`).
    pub fn name(&self) -> String {
        let mut buf: [std::ffi::c_char; 64] = [0; 64];
        // SAFETY: buf is a writable buffer of RTE_ETH_NAME_MAX_LEN (64) bytes.
        let rc = unsafe { relay_sys::rte_eth_dev_get_name_by_port(self.id, buf.as_mut_ptr()) };
        if rc < 0 {
            return format!("port{}", self.id);
        }
        // SAFETY: on success DPDK wrote a NUL-terminated name into buf.
        unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    /// Number of receive and transmit queues.
    pub fn queue_counts(&self) -> (u16, u16) {
        (self.rx_queues, self.tx_queues)
    }

    /// Whether the NIC checks received UDP checksums (requested and supported).
    pub fn checks_udp_checksums(&self) -> bool {
        self.rx_offloads & relay_sys::RTE_ETH_RX_OFFLOAD_UDP_CKSUM != 0
    }

    /// Whether the NIC completes sent UDP checksums (requested and supported).
    pub fn completes_udp_checksums(&self) -> bool {
        self.tx_offloads & relay_sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM != 0
    }

    /// The port's MAC address.
    pub fn mac(&self) -> MacAddr {
        let mut addr = rte_ether_addr::default();
        // SAFETY: addr is a valid out-pointer.
        let rc = unsafe { relay_sys::rte_eth_macaddr_get(self.id, &mut addr) };
        if rc < 0 {
            return MacAddr::default();
        }
        MacAddr(addr.addr_bytes)
    }

    /// Sets the port's MAC address (virtual devices such as `net_ring` start with zeros).
    pub fn set_mac(&self, mac: MacAddr) -> Result<(), DpdkError> {
        let mut addr = rte_ether_addr { addr_bytes: mac.0 };
        // SAFETY: addr is a valid pointer for the call; DPDK copies the address.
        check("rte_eth_dev_default_mac_addr_set", unsafe {
            relay_sys::rte_eth_dev_default_mac_addr_set(self.id, &mut addr)
        })?;
        Ok(())
    }

    /// Receives into the free slots of `burst` from `queue`; returns how many arrived.
    #[inline]
    pub fn rx_burst(&self, queue: u16, burst: &mut Burst<'eal>) -> usize {
        debug_assert!(queue < self.rx_queues);
        let room = (BURST_SIZE - burst.len) as u16;
        // SAFETY: the destination has `room` free slots after burst.len; DPDK writes that
        // many valid mbuf pointers at most, whose ownership passes to the burst.
        let n = unsafe {
            relay_sys::rte_eth_rx_burst(
                self.id,
                queue,
                burst.mbufs.as_mut_ptr().add(burst.len),
                room,
            )
        };
        burst.len += usize::from(n);
        usize::from(n)
    }

    /// Queues the packets of `burst` on `queue` for sending, from the front; returns how many
    /// were taken. Those not taken (the transmit ring was full) stay in `burst`, in order.
    #[inline]
    pub fn tx_burst(&self, queue: u16, burst: &mut Burst<'eal>) -> usize {
        debug_assert!(queue < self.tx_queues);
        if burst.is_empty() {
            return 0;
        }
        // SAFETY: the first burst.len slots hold owned mbufs; the driver takes ownership of
        // the first n it returns, which we then drop from the burst without freeing.
        let n = unsafe {
            relay_sys::rte_eth_tx_burst(self.id, queue, burst.mbufs.as_mut_ptr(), burst.len as u16)
        };
        burst.consume_front(usize::from(n));
        usize::from(n)
    }

    /// Entries in the RSS redirection table (0 without RSS).
    pub fn reta_size(&self) -> u16 {
        self.reta_size
    }

    /// One handle per transmit queue `q`, with receive queue `q` if the port has it, to hand
    /// to the worker threads. The port stays borrowed while they exist, so it cannot be used
    /// or closed meanwhile, and each queue has exactly one owner.
    pub fn queue_handles(&mut self) -> Vec<Queue<'_, 'eal>> {
        let rx: Vec<Vec<u16>> = (0..self.tx_queues)
            .map(|q| {
                if q < self.rx_queues {
                    vec![q]
                } else {
                    Vec::new()
                }
            })
            .collect();
        self.queue_handles_with(&rx)
            .expect("queue q of a port is valid for every q below its queue count")
    }

    /// One handle per transmit queue `q`, polling the receive queues `rx[q]` (any number,
    /// none included): for explicit queue maps. Every receive queue must be below the
    /// configured count and given to at most one handle, else [`DpdkError::InvalidArgument`]:
    /// two threads polling one queue would race inside the driver.
    pub fn queue_handles_with(
        &mut self,
        rx: &[Vec<u16>],
    ) -> Result<Vec<Queue<'_, 'eal>>, DpdkError> {
        if rx.len() > usize::from(self.tx_queues) {
            return Err(DpdkError::InvalidArgument(format!(
                "port {}: {} queue handles asked for, it has {} transmit queues",
                self.id,
                rx.len(),
                self.tx_queues
            )));
        }
        let mut taken = vec![false; usize::from(self.rx_queues)];
        for &q in rx.iter().flatten() {
            match taken.get_mut(usize::from(q)) {
                Some(t) if !*t => *t = true,
                Some(_) => {
                    return Err(DpdkError::InvalidArgument(format!(
                        "port {}: receive queue {q} given to two handles",
                        self.id
                    )))
                }
                None => {
                    return Err(DpdkError::InvalidArgument(format!(
                        "port {}: receive queue {q} does not exist (it has {})",
                        self.id, self.rx_queues
                    )))
                }
            }
        }
        Ok((0..self.tx_queues)
            .map(|queue| Queue {
                port: self.id,
                queue,
                rx_queues: rx.get(usize::from(queue)).cloned().unwrap_or_default(),
                next_rx: 0,
                _port: PhantomData,
                _eal: PhantomData,
            })
            .collect())
    }

    /// The port's counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = rte_eth_stats::default();
        // SAFETY: s is a valid out-pointer.
        check("rte_eth_stats_get", unsafe {
            relay_sys::rte_eth_stats_get(self.id, &mut s)
        })?;
        Ok(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_no_mbuf: s.rx_nombuf,
        })
    }
}

impl Drop for Port<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the port; stopping a stopped port is harmless, and close releases
        // the mbufs held in its rings back to their pool (which outlives the port).
        unsafe {
            relay_sys::rte_eth_dev_stop(self.id);
            relay_sys::rte_eth_dev_close(self.id);
        }
    }
}

/// What a port can do with queues ([`Port::caps`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortCaps {
    /// It can spread UDP over its receive queues by a hash of the destination port (RSS with
    /// a redirection table); if not, several workers share it by software dispatch.
    pub rss_udp: bool,
    /// Most receive queues.
    pub max_rx_queues: u16,
    /// Most transmit queues.
    pub max_tx_queues: u16,
}

/// A transmit queue and the receive queues (usually one, possibly none or several) of one
/// port, owned by one worker thread.
pub struct Queue<'p, 'eal> {
    port: u16,
    queue: u16,
    rx_queues: Vec<u16>,
    /// The receive queue polled first next time (round robin, so a busy queue does not starve
    /// the others of burst room).
    next_rx: usize,
    _port: PhantomData<&'p mut ()>,
    _eal: PhantomData<&'eal Eal>,
}

impl<'eal> Queue<'_, 'eal> {
    /// The port id.
    pub fn port_id(&self) -> u16 {
        self.port
    }

    /// The transmit queue's index.
    pub fn queue_id(&self) -> u16 {
        self.queue
    }

    /// The receive queues this handle polls.
    pub fn rx_queue_ids(&self) -> &[u16] {
        &self.rx_queues
    }

    /// Whether the handle has a receive queue (a port shared by software dispatch may have
    /// fewer receive queues than workers).
    pub fn receives(&self) -> bool {
        !self.rx_queues.is_empty()
    }

    /// Receives into the free slots of `burst` from this handle's receive queues, each polled
    /// once while room remains; returns how many arrived.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut Burst<'eal>) -> usize {
        let polled = self.rx_queues.len();
        let mut arrived = 0;
        for i in 0..polled {
            if burst.len == BURST_SIZE {
                break;
            }
            let queue = self.rx_queues[(self.next_rx + i) % polled];
            let room = (BURST_SIZE - burst.len) as u16;
            // SAFETY: this handle is the only user of this receive queue (queue_handles_with
            // gives each to one handle and borrows the port meanwhile); the destination has
            // `room` free slots.
            let n = unsafe {
                relay_sys::rte_eth_rx_burst(
                    self.port,
                    queue,
                    burst.mbufs.as_mut_ptr().add(burst.len),
                    room,
                )
            };
            burst.len += usize::from(n);
            arrived += usize::from(n);
        }
        if polled > 1 {
            self.next_rx = (self.next_rx + 1) % polled;
        }
        arrived
    }

    /// Queues the packets of `burst` for sending, from the front; returns how many were
    /// taken. The rest stay in `burst`, in order.
    #[inline]
    pub fn tx_burst(&mut self, burst: &mut Burst<'eal>) -> usize {
        if burst.is_empty() {
            return 0;
        }
        // SAFETY: as for rx_burst; the driver takes ownership of the first n mbufs.
        let n = unsafe {
            relay_sys::rte_eth_tx_burst(
                self.port,
                self.queue,
                burst.mbufs.as_mut_ptr(),
                burst.len as u16,
            )
        };
        burst.consume_front(usize::from(n));
        usize::from(n)
    }
}
