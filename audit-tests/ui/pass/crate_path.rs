//! `#[audit(crate = "…")]` for code that reaches audit_core under another name.
mod reexport {
    pub use audit_core as audit;
}

use reexport::audit;

#[derive(audit::Auditable)]
#[audit(crate = "crate::reexport::audit", resource = "renamed_crate")]
struct Thing {
    #[audit(track, id)]
    id: u8,
}

fn main() {
    use audit::Auditable;
    assert_eq!(Thing::schema().resource_type, "renamed_crate");
    assert_eq!(Thing { id: 3 }.resource_id(), "3");
}
