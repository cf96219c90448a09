//! The code `#[derive(Auditable)]` generates is clean under strict lint sets, so a crate that
//! enables them can derive it: the workspace gate `cargo clippy --workspace --all-targets --
//! -D warnings` lints this file, whose types cover every shape the derive expands differently
//! (plain, flatten, embedded, lifetimes, type and const parameters, a renamed crate path).
//! The derive silences exactly one lint itself (`clippy::type_repetition_in_bounds`, on
//! generic types only).
#![forbid(unsafe_code)]
#![deny(
    clippy::pedantic,
    clippy::nursery,
    clippy::allow_attributes,
    clippy::allow_attributes_without_reason,
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    unused_qualifications,
    unused_results,
    unused_lifetimes,
    single_use_lifetimes,
    elided_lifetimes_in_paths,
    trivial_casts,
    trivial_numeric_casts,
    non_ascii_idents,
    keyword_idents,
    let_underscore_drop,
    redundant_lifetimes
)]

use std::borrow::Cow;

use audit_core::{Auditable, FieldClass};

/// `audit_core` under another name.
pub mod renamed {
    pub use audit_core as audit;
}

/// Fields every resource embeds.
#[derive(Auditable, Debug, Clone)]
#[audit(embedded)]
pub struct Timestamps {
    /// When it was created.
    #[audit(ignore, reason = "set once")]
    pub created_at: u64,
}

/// Every class and role, an icon, actions and a flattened struct.
#[derive(Auditable, Debug, Clone)]
#[audit(resource = "lint_workspace", actions(create, write), icon = "w.svg")]
pub struct Workspace {
    /// The id.
    #[audit(track, id)]
    pub id: u64,
    /// The name.
    #[audit(track, target, rename = "display")]
    pub name: String,
    /// A secret.
    #[audit(secret)]
    pub token: String,
    /// Shared timestamps.
    #[audit(flatten)]
    pub times: Timestamps,
}

/// Lifetimes, a type parameter with a bound of its own, and a const parameter.
#[derive(Auditable, Debug, Clone)]
pub struct Setting<'a, T: Clone, const N: usize> {
    /// The key.
    #[audit(track, id)]
    pub key: &'a str,
    /// The value.
    #[audit(track)]
    pub value: T,
    /// Borrowed text.
    #[audit(track)]
    pub note: Cow<'a, str>,
    /// A secret of a const-generic size.
    #[audit(secret)]
    pub seal: [u8; N],
    /// Shared timestamps.
    #[audit(flatten)]
    pub times: Timestamps,
}

/// Generic and embedded: a table beside the impl that nothing registers.
#[derive(Auditable, Debug, Clone)]
#[audit(embedded)]
pub struct Versioned<T: Clone> {
    /// The version.
    #[audit(track)]
    pub version: T,
}

/// Derived through a renamed path to `audit_core`.
#[derive(renamed::audit::Auditable, Debug)]
#[audit(crate = "crate::renamed::audit")]
pub struct Renamed {
    /// Ignored.
    #[audit(ignore)]
    pub raw: u8,
}

#[test]
fn the_linted_types_work() {
    let times = Timestamps { created_at: 1 };
    let old = Setting {
        key: "k",
        value: 1_u8,
        note: Cow::Borrowed("a"),
        seal: [0; 4],
        times,
    };
    let new = Setting {
        value: 2,
        seal: [1; 4],
        ..old.clone()
    };
    let diff = audit_core::diff(Some(&old), Some(&new));
    assert_eq!(
        diff.iter().map(|(name, _)| name).collect::<Vec<_>>(),
        ["seal", "value"]
    );
    assert_eq!(Workspace::schema().fields[1].name, "display");
    assert_eq!(
        Setting::<'_, u8, 4>::schema().fields[3].class,
        FieldClass::Secret
    );
    assert_eq!(Renamed::schema().resource_type, "renamed");
    assert_eq!(Versioned::<u8>::schema().fields[0].name, "version");
    assert!(audit_core::resources().all(|r| r.name != "Versioned"));
}
