use audit_core::Auditable;

#[derive(Auditable)]
#[audit(resouce = "user")]
struct User {
    #[audit(trak)]
    email: String,
    #[audit(secrets)]
    password_hash: String,
    #[audit(banana)]
    avatar: String,
    #[audit(resource = "user")]
    name: String,
}

fn main() {}
