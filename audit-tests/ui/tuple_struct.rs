use audit_core::Auditable;

#[derive(Auditable)]
struct UserId(u64);

fn main() {
    let _ = UserId::schema();
}
