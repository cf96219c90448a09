//! Comparing two equal snapshots allocates nothing (a counting global allocator proves it),
//! and a write with one changed field allocates only for that field's values.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use audit_core::Auditable;

struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made on this thread while `f` runs.
fn allocations_during<R>(f: impl FnOnce() -> R) -> (usize, R) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    (ALLOCATIONS.with(Cell::get), result)
}

#[derive(Auditable, Clone)]
struct Template {
    #[audit(track, id)]
    id: u64,
    #[audit(track, target)]
    name: String,
    #[audit(track)]
    display_name: String,
    #[audit(track)]
    description: String,
    #[audit(track)]
    default_ttl: Option<i64>,
    #[audit(track)]
    group_acl: Vec<String>,
    #[audit(track)]
    user_acl: std::collections::BTreeMap<String, Vec<String>>,
    #[audit(secret)]
    provisioner_token: String,
    #[audit(ignore)]
    updated_at: u64,
}

#[test]
fn equal_snapshots_allocate_nothing_and_one_change_allocates_little() {
    let mut acl = std::collections::BTreeMap::new();
    acl.insert("alice".to_string(), vec!["admin".to_string()]);
    let old = Template {
        id: 1,
        name: "docker".into(),
        display_name: "Docker".into(),
        description: "A template with a long description that is not short".into(),
        default_ttl: Some(3600),
        group_acl: vec!["everyone".into(), "admins".into()],
        user_acl: acl,
        provisioner_token: "token".into(),
        updated_at: 1,
    };
    let mut same = old.clone();
    same.updated_at = 2; // ignored fields may differ
    let (count, diff) = allocations_during(|| audit_core::diff(Some(&old), Some(&same)));
    assert!(diff.is_empty());
    assert_eq!(count, 0, "diffing equal snapshots allocated {count} times");

    let mut renamed = old.clone();
    renamed.provisioner_token = "rotated".into();
    let (count, diff) = allocations_during(|| audit_core::diff(Some(&old), Some(&renamed)));
    assert_eq!(diff.len(), 1);
    assert_eq!(count, 1, "a secret change needs only the entry list");

    let mut retitled = old.clone();
    retitled.display_name = "Docker (new)".into();
    let (count, diff) = allocations_during(|| audit_core::diff(Some(&old), Some(&retitled)));
    assert_eq!(diff.len(), 1);
    // One for the entry list, one for each serialized string value.
    assert_eq!(count, 3, "one changed string field allocated {count} times");
}
