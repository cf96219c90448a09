use audit_core::Auditable;

#[derive(Auditable)]
struct Template {
    #[audit(track, id)]
    id: u64,
    #[audit(track, id)]
    uuid: String,
    #[audit(track, target)]
    name: String,
    #[audit(track, target)]
    display_name: String,
}

fn main() {}
