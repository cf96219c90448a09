//! Stable byte encodings: what gets hashed, so that equal things hash equal and different
//! things never do.
//!
//! * [`value`]: any value serde can serialize, or any JSON value, as one canonical byte string
//!   (the JSON data model, map keys sorted, one form per number). The hash chain uses it for
//!   the JSON parts of an event; secret fingerprints stream a secret through it into an HMAC.
//! * [`event`] (feature `chain`): the canonical bytes of a stored event, every stored field
//!   and its log position, as the hash chain hashes them.
//!
//! Both formats are fixed: a stored chain or fingerprint made by one version of this crate
//! verifies with any later one. A change to either is a new, separately tagged version.

#[cfg(feature = "chain")]
pub mod event;
pub mod value;
