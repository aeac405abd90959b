//! Control plane of the relay: SIP over TLS, the B2BUA that anchors media, SDES keys, the
//! call-detail-record store and the `relayctl` operator CLI.
//!
//! Nothing is implemented here yet: the foundation issue only creates the crate so the
//! workspace layout is fixed. The CDR store and the B2BUA arrive with their own issues.

#![forbid(unsafe_code)]
