use audit_core::Auditable;

#[derive(PartialEq)]
struct Schedule(String);

#[derive(Auditable)]
struct Workspace {
    #[audit(track)]
    autostart_schedule: Schedule,
}

fn main() {}
