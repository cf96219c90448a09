use audit_core::Auditable;

struct Key(Vec<u8>);

#[derive(Auditable)]
struct GitSshKey {
    #[audit(track, id)]
    id: u64,
    #[audit(secret)]
    private_key: Key,
}

fn main() {}
