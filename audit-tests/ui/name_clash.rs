use audit_core::Auditable;

#[derive(Auditable, serde::Serialize)]
struct User {
    #[audit(track)]
    email: String,
    #[audit(track, rename = "email")]
    email_address: String,
    #[audit(track)]
    #[serde(rename = "email")]
    contact: String,
}

fn main() {}
