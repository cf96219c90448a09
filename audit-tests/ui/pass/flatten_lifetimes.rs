//! A borrowed struct can flatten another borrowed struct: the table does not depend on
//! lifetimes, so it is built (and registered) with the lifetimes erased.
use audit_core::Auditable;

#[derive(Auditable, Clone)]
#[audit(embedded)]
struct Owner<'a> {
    #[audit(track)]
    owner_name: &'a str,
}

#[derive(Auditable, Clone)]
#[audit(resource = "borrowed_file")]
struct File<'a, 'b: 'a> {
    #[audit(track, target)]
    path: &'b str,
    #[audit(flatten)]
    owner: Owner<'a>,
}

fn main() {
    let names: Vec<_> = File::schema().fields.iter().map(|f| f.name).collect();
    assert_eq!(names, ["path", "owner_name"]);
    assert!(audit_core::resources().any(|r| r.resource_type == "borrowed_file"));
    let (alice, bob) = (String::from("alice"), String::from("bob"));
    let old = File { path: "/a", owner: Owner { owner_name: &alice } };
    let new = File { owner: Owner { owner_name: &bob }, ..old.clone() };
    assert_eq!(
        serde_json::to_string(&audit_core::diff(Some(&old), Some(&new))).unwrap(),
        r#"{"owner_name":{"old":"alice","new":"bob","secret":false}}"#
    );
    assert_eq!(new.resource_target(), "/a");
}
