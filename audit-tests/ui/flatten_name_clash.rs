use audit_core::Auditable;

#[derive(Auditable)]
struct Timestamps {
    #[audit(ignore)]
    created_at: u64,
}

#[derive(Auditable)]
struct Workspace {
    #[audit(track)]
    created_at: u64,
    #[audit(flatten)]
    times: Timestamps,
}

fn main() {}
