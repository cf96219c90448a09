use audit_core::Auditable;

struct Timestamps {
    created_at: u64,
}

#[derive(Auditable)]
struct Workspace {
    #[audit(track, id)]
    id: u64,
    #[audit(flatten)]
    times: Timestamps,
}

fn main() {}
