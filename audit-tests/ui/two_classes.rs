use audit_core::Auditable;

#[derive(Auditable)]
struct User {
    #[audit(track, secret)]
    password_hash: String,
    #[audit(ignore)]
    #[audit(track)]
    email: String,
}

fn main() {}
