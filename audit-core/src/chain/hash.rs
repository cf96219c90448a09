//! The chain hash of each stored event, and the head of the chain. (Computing hashes is
//! [`ChainHasher`](super::ChainHasher)'s job, with the feature `chain`.)

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A SHA-256 chain hash. Displays (and parses, and serializes) as 64 lowercase hex digits.
/// The default is [`ChainHash::GENESIS`].
///
/// `hash(seq) = SHA-256(hash(seq - 1) ‖ canonical bytes of the event at seq)`, where the
/// [canonical bytes](crate::canonical::event) begin with their format tag and include `seq`.
/// Before the first event, the chain starts from [`ChainHash::GENESIS`], 32 zero bytes: the
/// format tag that opens every event's bytes already separates this hash from any other use
/// of SHA-256, and an empty log's checkpoint then has the plain root `AAAA…AAA=`.
///
/// ```
/// use audit_core::chain::{ChainHash, ChainHead};
///
/// let text = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
/// let hash: ChainHash = text.parse().unwrap();
/// assert_eq!(hash.to_string(), text);
/// assert_eq!(ChainHead::GENESIS.hash, ChainHash::GENESIS);
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainHash([u8; 32]);

impl ChainHash {
    /// What the chain starts from: 32 zero bytes.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    /// A hash from its bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        ChainHash(bytes)
    }

    /// The hash's bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({self})")
    }
}

impl FromStr for ChainHash {
    type Err = HashParseError;

    /// Parses 64 hex digits (either case).
    ///
    /// ```
    /// use audit_core::chain::ChainHash;
    /// let err = "abc".parse::<ChainHash>().unwrap_err();
    /// assert!(err.to_string().contains("64 hex digits"));
    /// ```
    fn from_str(text: &str) -> Result<Self, HashParseError> {
        let bad = || HashParseError::new(text, "a chain hash is 64 hex digits");
        if text.len() != 64 || !text.is_ascii() {
            return Err(bad());
        }
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(ChainHash(bytes))
    }
}

impl Serialize for ChainHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChainHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A chain hash that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashParseError {
    message: String,
}

impl HashParseError {
    pub(crate) fn new(text: &str, why: &str) -> Self {
        HashParseError {
            message: format!(
                "invalid chain hash `{}`: {why}",
                crate::query::echo::bare(text)
            ),
        }
    }
}

impl fmt::Display for HashParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HashParseError {}

/// The chain after `seq` events: the position of the last one and its hash. The head of a
/// store, the anchor a purge leaves (the last purged event), and what a checkpoint signs.
/// The default is [`ChainHead::GENESIS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainHead {
    /// The log position of the last event (0 before the first).
    pub seq: u64,
    /// Its chain hash ([`ChainHash::GENESIS`] before the first event).
    pub hash: ChainHash,
}

impl ChainHead {
    /// The head of an empty log.
    pub const GENESIS: ChainHead = ChainHead {
        seq: 0,
        hash: ChainHash::GENESIS,
    };
}

impl fmt::Display for ChainHead {
    /// `#42 (9f86d0…)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} ({})", self.seq, self.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let h = ChainHash::from_bytes(std::array::from_fn(|i| i as u8 * 7));
        assert_eq!(h.to_string().parse::<ChainHash>().unwrap(), h);
        assert_eq!(
            h.to_string().to_uppercase().parse::<ChainHash>().unwrap(),
            h
        );
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<ChainHash>(&json).unwrap(), h);
    }

    #[test]
    fn malformed_hashes_are_refused_with_the_reason() {
        for bad in ["", "zz", &"g".repeat(64), &"a".repeat(63), &"é".repeat(32)] {
            assert!(bad.parse::<ChainHash>().is_err(), "{bad}");
        }
        let err = "\u{1b}[31m".parse::<ChainHash>().unwrap_err();
        assert!(!err.to_string().contains('\u{1b}'), "{err}");
        assert!(err.to_string().contains("64 hex digits"), "{err}");
    }
}
