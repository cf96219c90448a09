use audit_core::Auditable;

#[derive(Auditable)]
struct Card {
    #[audit(track, id, no_fingerprint)]
    id: u64,
    #[audit(secret, no_fingerprint, no_fingerprint)]
    pin: String,
}

fn main() {}
