//! A secret opted out of fingerprints: its type needs no `Serialize`, and its change is
//! recorded as `{"secret": true}` whatever key the auditor has.
use audit_core::{Auditable, Change};

#[derive(PartialEq)]
struct Pin([u8; 4]);

#[derive(Auditable)]
#[audit(resource = "card")]
struct Card {
    #[audit(track, id)]
    id: u64,
    #[audit(secret, no_fingerprint, reason = "four digits: a fingerprint would give them away")]
    pin: Pin,
    #[audit(secret)]
    token: String,
}

fn main() {
    let old = Card { id: 1, pin: Pin(*b"1234"), token: "a".into() };
    let new = Card { id: 1, pin: Pin(*b"4321"), token: "b".into() };
    let diff = audit_core::diff(Some(&old), Some(&new));
    assert_eq!(diff.get("pin"), Some(&Change::Secret));
    assert_eq!(diff.get("token"), Some(&Change::Secret));
}
