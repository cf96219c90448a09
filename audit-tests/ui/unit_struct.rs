use audit_core::Auditable;

#[derive(Auditable)]
struct Marker;

fn main() {}
