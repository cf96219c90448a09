use audit_core::Auditable;

#[derive(Auditable)]
enum Status {
    Active,
    Suspended,
}

fn main() {}
