use audit_core::Auditable;

// A second `actions(…)` is refused, not appended to the first: the list is given once.
#[derive(Auditable)]
#[audit(actions(create, write))]
#[audit(resource = "workspace", actions(delete))]
struct Workspace {
    #[audit(track, id)]
    id: u64,
}

fn main() {}
