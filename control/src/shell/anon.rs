//! Log lines outlive the 30 days of the call records (journald, files), so they never name
//! a person: no numbers or URIs are logged at all, and peer addresses appear only as a
//! pseudonym that changes every UTC day: a keyed hash under a random key held in memory
//! only and replaced at midnight, so the same address reads the same within a day (to
//! follow one problem) and cannot be linked to it afterwards by anyone.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

/// Per-day pseudonyms of addresses.
pub struct Pseudonyms {
    day: i64,
    key: zeroize::Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pseudonyms(day {}, <key redacted>)", self.day)
    }
}

fn fresh_key() -> zeroize::Zeroizing<[u8; 32]> {
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    // Without randomness the pseudonyms would still change daily but be guessable; the OS
    // source does not fail on a booted Linux.
    let _ = getrandom::getrandom(&mut key[..]);
    key
}

impl Pseudonyms {
    /// Pseudonyms for the UTC day of `now_unix` (seconds).
    pub fn new(now_unix: i64) -> Pseudonyms {
        Pseudonyms {
            day: now_unix.div_euclid(86_400),
            key: fresh_key(),
        }
    }

    /// `ip`'s pseudonym today (`peer-` and 10 hex digits); a new day, a new key.
    pub fn of(&mut self, ip: IpAddr, now_unix: i64) -> String {
        let day = now_unix.div_euclid(86_400);
        if day != self.day {
            self.day = day;
            self.key = fresh_key();
        }
        let mut h = Sha256::new();
        h.update(&self.key[..]);
        match ip {
            IpAddr::V4(a) => h.update(a.octets()),
            IpAddr::V6(a) => h.update(a.octets()),
        }
        let d = h.finalize();
        format!(
            "peer-{}",
            d[..5]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_keeps_its_pseudonym_for_a_day_only() {
        let ip: IpAddr = "198.18.10.2".parse().unwrap();
        let mut p = Pseudonyms::new(86_400 * 100 + 10);
        let a = p.of(ip, 86_400 * 100 + 20);
        assert_eq!(a, p.of(ip, 86_400 * 101 - 1));
        assert!(a.starts_with("peer-") && !a.contains("198"));
        assert_ne!(a, p.of("198.18.10.3".parse().unwrap(), 86_400 * 100 + 30));
        assert_ne!(a, p.of(ip, 86_400 * 101), "a new day, a new pseudonym");
    }
}
