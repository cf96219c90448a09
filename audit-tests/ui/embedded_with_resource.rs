use audit_core::Auditable;

#[derive(Auditable)]
#[audit(embedded, resource = "timestamps", actions(write))]
struct Timestamps {
    #[audit(ignore)]
    created_at: u64,
}

fn main() {}
