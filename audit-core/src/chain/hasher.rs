//! Computing chain hashes (feature `chain`): the step a store runs for each event it
//! appends, and the verifier for each event it checks.

use sha2::{Digest, Sha256};

use super::hash::{ChainHash, ChainHead};
use crate::AuditEvent;
use crate::canonical::event::write_canonical;

/// Computes chain hashes, reusing one buffer for the canonical bytes.
///
/// ```
/// use audit_core::chain::{ChainHash, ChainHasher, ChainHead};
/// use audit_core::{action, AuditEvent};
///
/// let mut hasher = ChainHasher::new();
/// let first = AuditEvent::builder(action::LOGIN).resource_type("api_key").build();
/// let head = hasher.next(&ChainHead::GENESIS, &first).unwrap();
/// assert_eq!(head.seq, 1);
/// assert_eq!(head.hash, hasher.hash(&ChainHash::GENESIS, 1, &first));
/// ```
#[derive(Debug, Default)]
pub struct ChainHasher {
    buf: Vec<u8>,
}

impl ChainHasher {
    /// A hasher.
    pub fn new() -> Self {
        ChainHasher {
            buf: Vec::with_capacity(1024),
        }
    }

    /// The hash of `event` stored at position `seq` right after an event whose hash is
    /// `prev`.
    pub fn hash(&mut self, prev: &ChainHash, seq: u64, event: &AuditEvent) -> ChainHash {
        self.buf.clear();
        write_canonical(seq, event, &mut self.buf);
        let mut sha = Sha256::new();
        sha.update(prev.as_bytes());
        sha.update(&self.buf);
        ChainHash::from_bytes(sha.finalize().into())
    }

    /// The head after appending `event` to a log whose head is `head`: the next position
    /// and its hash. This is the one step a store runs for each new event, under its writer
    /// lock, in the transaction that inserts the event. `None` only if the position would pass
    /// `u64::MAX`.
    pub fn next(&mut self, head: &ChainHead, event: &AuditEvent) -> Option<ChainHead> {
        let seq = head.seq.checked_add(1)?;
        Some(ChainHead {
            seq,
            hash: self.hash(&head.hash, seq, event),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_link_depends_on_the_previous_hash_and_the_position() {
        let e = AuditEvent::builder("login").build();
        let mut h = ChainHasher::new();
        let a = h.hash(&ChainHash::GENESIS, 1, &e);
        assert_ne!(a, h.hash(&a, 1, &e));
        assert_ne!(a, h.hash(&ChainHash::GENESIS, 2, &e));
        assert_eq!(a, h.hash(&ChainHash::GENESIS, 1, &e));
        let max = ChainHead {
            seq: u64::MAX,
            hash: a,
        };
        assert_eq!(h.next(&max, &e), None);
    }
}
