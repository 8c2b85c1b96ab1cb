//! Answers of calls that can only ever be replayed, kept in memory so a retry storm does not
//! reach the database.
//!
//! Safe across processes: a cached entry is the committed answer of a call whose repeats are
//! always replays (`new`, `renew`, `upgrade`, `cancel`), and a committed answer is never
//! rewritten, so whichever process answers a repeat, the bytes are those the database holds.
//! Suspend and reactivate are not cached: the same identity becomes a new call after the
//! opposite operation (see `Service::is_new_call`). The request digest is still compared, so a
//! repeat with other content is still a conflict.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::command::Operation;

/// Entries kept at most (two generations of half as many: the older one is dropped whole when
/// the newer fills, so a recently used answer survives at least half the capacity of others).
const CAPACITY: usize = 20_000;

/// Answer bytes kept at most, split the same way (an answer of a thousand codes is 110 kB).
const BYTES: usize = 32 << 20;

/// Answers larger than this are left to the database: a few such would crowd out the rest.
const LARGEST: usize = 64 << 10;

/// A call's identity: operation, Nexway's fulfillment id, order id (or "").
type Key = (Operation, String, String);

#[derive(Clone)]
pub struct Stored {
    pub digest: String,
    pub answer: Arc<str>,
}

#[derive(Default)]
pub struct Replays {
    generations: Mutex<[Generation; 2]>,
}

#[derive(Default)]
struct Generation {
    entries: HashMap<Key, Stored>,
    bytes: usize,
}

impl Generation {
    fn remove(&mut self, key: &Key) -> Option<Stored> {
        let stored = self.entries.remove(key)?;
        self.bytes -= stored.answer.len();
        Some(stored)
    }
}

/// Whether repeats of this operation are replays of its first answer, whatever happened since.
pub fn always_replayed(operation: Operation) -> bool {
    match operation {
        Operation::New | Operation::Renew | Operation::Upgrade | Operation::Cancel => true,
        Operation::Suspend | Operation::Reactivate => false,
    }
}

impl Replays {
    pub fn get(&self, operation: Operation, fulfillment: &str, order: &str) -> Option<Stored> {
        if !always_replayed(operation) {
            return None;
        }
        let key = (operation, fulfillment.to_owned(), order.to_owned());
        // A panic while holding the lock leaves whole entries: keep using them.
        let mut generations = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stored) = generations[0].entries.get(&key) {
            return Some(stored.clone());
        }
        // Found in the older generation: move it to the newer so it stays.
        let stored = generations[1].remove(&key)?;
        Self::put(&mut generations, key, stored.clone());
        Some(stored)
    }

    /// Remembers a committed answer (of an operation whose repeats are replays).
    pub fn insert(&self, operation: Operation, fulfillment: &str, order: &str, stored: Stored) {
        if !always_replayed(operation) || stored.answer.len() > LARGEST {
            return;
        }
        let key = (operation, fulfillment.to_owned(), order.to_owned());
        let mut generations = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        Self::put(&mut generations, key, stored);
    }

    fn put(generations: &mut [Generation; 2], key: Key, stored: Stored) {
        let newer = &generations[0];
        if newer.entries.len() >= CAPACITY / 2 || newer.bytes + stored.answer.len() > BYTES / 2 {
            generations[1] = std::mem::take(&mut generations[0]);
        }
        let newer = &mut generations[0];
        newer.remove(&key);
        newer.bytes += stored.answer.len();
        newer.entries.insert(key, stored);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let generations = self.generations.lock().unwrap();
        generations[0].entries.len() + generations[1].entries.len()
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        let generations = self.generations.lock().unwrap();
        generations[0].bytes + generations[1].bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(answer: &str) -> Stored {
        Stored {
            digest: "d".into(),
            answer: answer.into(),
        }
    }

    #[test]
    fn keeps_answers_of_calls_that_are_always_replayed_only() {
        let replays = Replays::default();
        replays.insert(Operation::New, "F-1", "", stored("a"));
        replays.insert(Operation::Suspend, "F-1", "", stored("b"));
        assert_eq!(
            &*replays.get(Operation::New, "F-1", "").unwrap().answer,
            "a"
        );
        assert!(replays.get(Operation::Suspend, "F-1", "").is_none());
        assert!(replays.get(Operation::New, "F-1", "ORD").is_none());
        assert!(replays.get(Operation::Renew, "F-1", "").is_none());
    }

    #[test]
    fn stays_bounded_and_keeps_what_is_used() {
        let replays = Replays::default();
        replays.insert(Operation::New, "kept", "", stored("k"));
        for i in 0..CAPACITY * 3 {
            replays.insert(Operation::New, &i.to_string(), "", stored("x"));
            if i % 1000 == 0 {
                assert!(replays.get(Operation::New, "kept", "").is_some());
            }
        }
        assert!(replays.len() <= CAPACITY);
        assert!(replays.get(Operation::New, "0", "").is_none());
    }

    #[test]
    fn stays_bounded_in_bytes_and_leaves_the_largest_answers_to_the_database() {
        let replays = Replays::default();
        let big = "x".repeat(LARGEST);
        for i in 0..(BYTES / LARGEST) * 3 {
            replays.insert(Operation::New, &i.to_string(), "", stored(&big));
            assert!(replays.bytes() <= BYTES, "{} bytes", replays.bytes());
        }
        let huge = "x".repeat(LARGEST + 1);
        replays.insert(Operation::New, "huge", "", stored(&huge));
        assert!(replays.get(Operation::New, "huge", "").is_none());
    }
}
