use audit_core::Auditable;

#[derive(Auditable)]
#[audit(resource = "user", resource = "account", actions(create, create))]
struct User {
    #[audit(track, track)]
    email: String,
    #[audit(ignore, reason = "a", reason = "b")]
    last_seen_at: u64,
    #[audit(track, id, id)]
    id: u64,
}

fn main() {}
