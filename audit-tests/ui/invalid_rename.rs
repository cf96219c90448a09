use audit_core::Auditable;

#[derive(Auditable)]
struct User {
    #[audit(track, rename = "")]
    email: String,
    #[audit(track, rename = "user name")]
    username: String,
    #[audit(track, rename = "email")]
    email_address: String,
    #[audit(track, rename = 5)]
    status: String,
}

fn main() {}
