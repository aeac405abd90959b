//! A `net_ring` vdev loops its transmissions back to its own receive queue: frames sent must
//! come back byte-identical, in order, and every mbuf must return to the pool.

mod common;

use std::time::{Duration, Instant};

use relay_dataplane::dpdk::{Burst, DpdkError, Eal, PktMbufPool, Port, PortConfig, BURST_SIZE};

const FRAMES: usize = 5_000;

#[test]
fn ring_tx_then_rx_is_byte_identical() {
    let eal = Eal::init(common::eal_args(&["net_ring0"])).expect("EAL starts without hugepages");
    // The EAL runs once per process.
    assert_eq!(
        Eal::init(common::eal_args(&[])).err(),
        Some(DpdkError::AlreadyInitialised)
    );
    assert_eq!(eal.port_count(), 1);

    let pool = PktMbufPool::create(
        &eal,
        "ring_test",
        4095,
        0,
        PktMbufPool::default_data_room(),
        -1,
    )
    .expect("pool");
    let port_id = Port::id_by_name(&eal, "net_ring0").expect("net_ring0 exists");
    assert!(matches!(
        Port::id_by_name(&eal, "net_ring7"),
        Err(DpdkError::NoSuchPort(_))
    ));
    let port = Port::open(&eal, port_id, &PortConfig::default(), pool).expect("port starts");
    let baseline_in_use = pool.in_use();

    let sent: Vec<Vec<u8>> = (0..FRAMES).map(common::test_frame).collect();
    let mut received: Vec<Vec<u8>> = Vec::with_capacity(FRAMES);
    let mut tx = Burst::new();
    let mut rx = Burst::new();
    let mut next = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while received.len() < FRAMES && Instant::now() < deadline {
        while next < FRAMES && !tx.is_full() {
            let mut m = pool.alloc().expect("pool has room");
            let frame = &sent[next];
            m.append(frame.len() as u16)
                .expect("tailroom")
                .copy_from_slice(frame);
            assert_eq!(m.data(), &frame[..]);
            tx.push(m).map_err(|_| ()).expect("burst has room");
            next += 1;
        }
        port.tx_burst(0, &mut tx);
        port.rx_burst(0, &mut rx);
        for m in rx.drain() {
            received.push(m.data().to_vec());
        }
    }
    assert_eq!(received.len(), FRAMES, "every frame came back");
    for (i, (s, r)) in sent.iter().zip(&received).enumerate() {
        assert_eq!(s, r, "frame {i} differs");
    }
    let stats = port.stats().expect("stats");
    assert_eq!(stats.tx_packets, FRAMES as u64);
    assert_eq!(stats.rx_packets, FRAMES as u64);
    assert_eq!(pool.in_use(), baseline_in_use, "no mbuf leaked");

    // A full burst refuses another mbuf and hands it back.
    let mut full = Burst::new();
    pool.alloc_bulk(&mut full, BURST_SIZE).expect("bulk alloc");
    assert!(full.is_full());
    let extra = pool.alloc().expect("one more");
    let extra = full.push(extra).expect_err("full burst refuses");
    drop(extra);
    // A partly consumed drain frees what it did not yield.
    let first = full.drain().next().expect("one mbuf");
    assert!(full.is_empty());
    drop(first);
    assert_eq!(
        pool.in_use(),
        baseline_in_use,
        "drain and drop return every mbuf"
    );
}
