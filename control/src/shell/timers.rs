//! The B2BUA's timers as one ordered queue the event loop sleeps on.
//!
//! The core asks for timers by [`Action::Timer`](relay_b2bua::Action) (a key and a deadline on
//! the shell's monotonic clock) and never cancels one: a timer that is no longer wanted is
//! ignored by the core when it fires. So a held call keeps several timers pending for minutes
//! (its transactions' timers, each leg's session timer, the media check). A spawned task with
//! its own sleep per timer cost about a kilobyte each and a task spawn per timer; an entry
//! here is the key and two integers, and the event loop has one sleep, on the earliest.

use std::collections::BTreeMap;

use relay_b2bua::TimerKey;

/// Pending timers, earliest first; equal deadlines fire in the order they were set.
#[derive(Debug, Default)]
pub struct TimerQueue {
    queue: BTreeMap<(u64, u64), TimerKey>,
    seq: u64,
}

impl TimerQueue {
    /// No timers.
    pub fn new() -> TimerQueue {
        TimerQueue::default()
    }

    /// Sets a timer for `key` at `at_ns`.
    pub fn insert(&mut self, at_ns: u64, key: TimerKey) {
        self.seq += 1;
        self.queue.insert((at_ns, self.seq), key);
    }

    /// The earliest deadline, if any timer is pending.
    pub fn next_deadline(&self) -> Option<u64> {
        self.queue.keys().next().map(|&(at, _)| at)
    }

    /// The earliest timer if it is due at `now_ns`.
    pub fn pop_due(&mut self, now_ns: u64) -> Option<TimerKey> {
        let entry = self.queue.first_entry()?;
        if entry.key().0 > now_ns {
            return None;
        }
        Some(entry.remove())
    }

    /// How many timers are pending.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_deadline_order_and_only_when_due() {
        let mut q = TimerQueue::new();
        q.insert(30, TimerKey::Retransmit(3));
        q.insert(10, TimerKey::Retransmit(1));
        q.insert(30, TimerKey::Retransmit(4));
        q.insert(20, TimerKey::Retransmit(2));
        assert_eq!(q.next_deadline(), Some(10));
        assert_eq!(q.pop_due(9), None);
        let mut fired = Vec::new();
        while let Some(TimerKey::Retransmit(n)) = q.pop_due(30) {
            fired.push(n);
        }
        assert_eq!(fired, [1, 2, 3, 4]);
        assert!(q.is_empty() && q.next_deadline().is_none());
    }
}
