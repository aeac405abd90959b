//! Identifiers the B2BUA makes: tags, branches, Call-IDs and call ids. Their randomness comes
//! from an [`IdSource`], so tests can make them predictable.

/// Makes the random parts of identifiers.
pub trait IdSource {
    /// `n` random bytes' worth of lowercase hex (2n characters).
    fn hex(&mut self, n: usize) -> String;
}

/// Identifiers from the operating system's random source.
#[derive(Debug, Default)]
pub struct OsIds;

impl IdSource for OsIds {
    fn hex(&mut self, n: usize) -> String {
        let mut bytes = vec![0u8; n];
        // The OS random source does not fail on Linux once booted; should it, the counter
        // below still keeps identifiers unique within this process.
        if getrandom::getrandom(&mut bytes).is_err() {
            static FALLBACK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
            let v = FALLBACK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = (v >> (8 * (i % 8))) as u8;
            }
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Counting identifiers, for tests: `000...1`, `000...2`, ...
#[derive(Debug, Default)]
pub struct CountingIds(u64);

impl IdSource for CountingIds {
    fn hex(&mut self, n: usize) -> String {
        self.0 += 1;
        format!("{:0width$x}", self.0, width = 2 * n)
    }
}

/// The magic cookie every RFC 3261 branch starts with.
///
//= https://www.rfc-editor.org/rfc/rfc3261#section-8.1.1.7
//# The branch ID inserted by an element compliant with this
//# specification MUST always begin with the characters "z9hG4bK".
pub const BRANCH_COOKIE: &str = "z9hG4bK";

/// The part of our branches after the cookie, by which we recognise our own Via in a
/// request that loops back to us.
pub const OUR_BRANCH_MARK: &str = "rly";

/// A new branch for a client transaction.
pub fn branch(ids: &mut dyn IdSource) -> String {
    format!("{BRANCH_COOKIE}{OUR_BRANCH_MARK}{}", ids.hex(8))
}

/// A new tag for a dialog side.
pub fn tag(ids: &mut dyn IdSource) -> String {
    ids.hex(6)
}

/// A new Call-ID for the far leg (RFC 3261 section 8.1.1.4: globally unique).
pub fn call_id(ids: &mut dyn IdSource, host: &str) -> String {
    format!("{}@{host}", ids.hex(12))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_have_their_forms() {
        let mut os = OsIds;
        let b = branch(&mut os);
        assert!(b.starts_with("z9hG4bKrly") && b.len() == 7 + 3 + 16, "{b}");
        assert_ne!(tag(&mut os), tag(&mut os));
        assert!(call_id(&mut os, "sbc.example.com").ends_with("@sbc.example.com"));
        let mut counting = CountingIds::default();
        assert_eq!(tag(&mut counting), "000000000001");
    }
}
