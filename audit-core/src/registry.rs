//! Every `Auditable` type linked into the program, collected at link time.
//!
//! The derive adds each type's schema to a [`linkme`] distributed slice, so no hand-kept list
//! can fall out of date. A generic type is registered once: its schema cannot depend on its
//! parameters (a field whose type mentions one cannot be flattened), so every instantiation
//! shares it. Types marked `embedded` are only flattened into others and are not listed.

use std::sync::OnceLock;

use crate::ResourceSchema;

/// For each derived type, a function returning its schema (`Auditable::schema`). A function
/// rather than the schema's address: a static holding the address costs the compiler one
/// more evaluation per derived type, about 5 % of the derive's compile time (BENCHMARKS.md,
/// "Compile cost of the derive").
#[doc(hidden)]
#[linkme::distributed_slice]
pub static RESOURCES: [fn() -> &'static ResourceSchema];

/// Adds a derived type's schema function to [`RESOURCES`]; used by the code
/// `#[derive(Auditable)]` generates, once per type.
///
/// linkme's `#[distributed_slice]` attribute is a procedural macro that also type-checks each
/// element through a helper function: run for every derived type, it was a quarter of the
/// derive's compile time (BENCHMARKS.md, "Compile cost of the derive"). On Linux the element
/// goes straight into the slice's link section instead, with the attributes linkme's element
/// expansion writes there (`#[used]`, the section `linkme_` + the slice's name); every test
/// of `resources()` fails on Linux if a linkme release ever names the section otherwise.
/// Elsewhere, where nothing here tests such a shortcut, linkme's attribute does the work.
#[doc(hidden)]
#[macro_export]
macro_rules! __register_resource {
    ($schema:expr) => {
        #[cfg(target_os = "linux")]
        #[used]
        #[unsafe(link_section = "linkme_RESOURCES")]
        static __AUDIT_REGISTRATION: fn() -> &'static $crate::ResourceSchema = $schema;

        #[cfg(not(target_os = "linux"))]
        #[$crate::__private::linkme::distributed_slice($crate::__private::RESOURCES)]
        #[linkme(crate = $crate::__private::linkme)]
        static __AUDIT_REGISTRATION: fn() -> &'static $crate::ResourceSchema = $schema;
    };
}

/// The schemas of every `#[derive(Auditable)]` type linked into the program, sorted by
/// `resource_type` then by Rust name.
///
/// ```
/// use audit_core::Auditable;
///
/// #[derive(Auditable)]
/// #[audit(resource = "api_key", actions(create, delete))]
/// struct ApiKey {
///     #[audit(track, id)] id: String,
/// }
///
/// assert!(audit_core::resources().any(|r| r.resource_type == "api_key"));
/// ```
pub fn resources() -> impl ExactSizeIterator<Item = &'static ResourceSchema> + Clone {
    static SORTED: OnceLock<Vec<&'static ResourceSchema>> = OnceLock::new();
    SORTED
        .get_or_init(|| {
            let mut all: Vec<_> = RESOURCES.iter().map(|schema| schema()).collect();
            all.sort_by_key(|s| (s.resource_type, s.name));
            all
        })
        .iter()
        .copied()
}

/// The registered schema with this resource type, if any.
pub fn resource(resource_type: &str) -> Option<&'static ResourceSchema> {
    resources().find(|r| r.resource_type == resource_type)
}
