use audit_core::Auditable;

#[derive(Auditable)]
struct Workspace {
    #[audit(track, id)]
    id: u64,
    name: String,
    #[audit(ignore)]
    last_used_at: u64,
    agent_token: String,
}

fn main() {
    // Uses of the type must not add follow-on errors.
    let _ = Workspace::schema();
}
