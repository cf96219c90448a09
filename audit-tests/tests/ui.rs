//! Compile-time diagnostics of `#[derive(Auditable)]`: every misuse is a clear error on the
//! offending token (`tests/ui/*.rs` with their committed `.stderr`), and the supported shapes
//! compile and behave (`tests/ui/pass/*.rs`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
    t.pass("ui/pass/*.rs");
}
