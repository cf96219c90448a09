use audit_core::Auditable;

#[derive(Auditable)]
#[audit(resource = "")]
struct Workspace {
    #[audit(track)]
    name: String,
}

#[derive(Auditable)]
#[audit(resource = "Workspace Build", actions(Start, stop))]
struct WorkspaceBuild {
    #[audit(track)]
    number: u64,
}

fn main() {}
