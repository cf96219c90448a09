use audit_core::Auditable;

#[derive(Auditable)]
struct Envelope<T> {
    #[audit(flatten)]
    inner: T,
}

fn main() {}
