//! Control plane of the relay: SIP over TLS, the B2BUA that anchors media, SDES keys, the
//! call-detail-record store and the `relayctl` operator CLI.
//!
//! Implemented so far: [`cdr`], the call-detail-record store (encrypted at rest, purged by
//! crypto-shredding, anonymised statistics, just-in-time audited access). The SIP side
//! arrives with its own issue and will feed [`cdr::CdrStore`] through [`cdr::CallRecord`].

#![forbid(unsafe_code)]

pub mod cdr;
