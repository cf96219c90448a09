use audit_core::Auditable;

#[derive(Auditable)]
struct ApiKey {
    #[audit(secret, id)]
    hashed_secret: String,
    #[audit(flatten, track)]
    other: Other,
    #[audit(track = "yes")]
    name: String,
}

#[derive(Auditable)]
struct Other {
    #[audit(track)]
    x: u8,
}

fn main() {}
