use audit_core::Auditable;

#[derive(PartialEq)]
struct Pin([u8; 4]);

#[derive(Auditable)]
struct Card {
    #[audit(track, id)]
    id: u64,
    #[audit(secret)]
    pin: Pin,
}

fn main() {}
