use audit_core::Auditable;

#[derive(Auditable)]
struct Workspace {
    #[audit(track, reason = "owners want to see it")]
    name: String,
}

fn main() {}
