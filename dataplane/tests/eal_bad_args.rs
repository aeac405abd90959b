//! A bad EAL argument is an error the caller can report, not a crash.

mod common;

use relay_dataplane::dpdk::{DpdkError, Eal};

#[test]
fn unknown_eal_option_is_reported() {
    let mut args = common::eal_args(&[]);
    args.push("--definitely-not-an-eal-option".into());
    match Eal::init(args) {
        Err(DpdkError::Call { op, errno }) => {
            assert_eq!(op, "rte_eal_init");
            assert!(errno > 0);
            let msg = DpdkError::Call { op, errno }.to_string();
            assert!(msg.starts_with("rte_eal_init failed: "), "{msg}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("EAL accepted an unknown option"),
    }
    // The process cannot try again: DPDK keeps its half-initialised state.
    assert_eq!(
        Eal::init(common::eal_args(&[])).err(),
        Some(DpdkError::AlreadyInitialised)
    );
    // NUL bytes are refused before DPDK sees them (and do not claim the EAL).
    assert!(matches!(
        Eal::init(["a\0b"]),
        Err(DpdkError::InvalidArgument(_))
    ));
}
