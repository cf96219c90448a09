//! Expansion snapshots, as Oxide's daft does them: every input that the trybuild pass cases
//! (`audit-tests/ui/pass/*.rs`) accept is also expanded here, pretty-printed and snapshotted,
//! so each accepted shape has a readable expansion to review (`cargo insta review` after a
//! change to `expand.rs`). Adding a pass case adds its snapshot.

use std::path::{Path, PathBuf};

use quote::{ToTokens, quote};

/// The trybuild pass cases.
fn pass_cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../audit-tests/ui/pass");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    files
}

/// Whether `attrs` include a `#[derive(…)]` naming `Auditable` (under any path).
fn derives_auditable(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        let mut found = false;
        if attr.path().is_ident("derive") {
            attr.parse_nested_meta(|meta| {
                found |= meta
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "Auditable");
                Ok(())
            })
            .expect("a derive attribute lists paths");
        }
        found
    })
}

/// Every `#[derive(Auditable)]` of `source`, expanded and pretty-printed, in source order.
fn expand_file(source: &str) -> String {
    let file: syn::File = syn::parse_str(source).expect("a pass case is valid Rust");
    let outputs = file.items.iter().filter_map(|item| match item {
        syn::Item::Struct(item) if derives_auditable(&item.attrs) => {
            let input: syn::DeriveInput =
                syn::parse2(item.to_token_stream()).expect("a struct is a derive input");
            Some(crate::expand::derive(&input))
        }
        _ => None,
    });
    let expanded = quote!(#(#outputs)*);
    let file: syn::File = syn::parse2(expanded.clone())
        .unwrap_or_else(|e| panic!("expansion is not valid Rust ({e}):\n{expanded}"));
    prettyplease::unparse(&file)
}

#[test]
fn every_pass_case_has_an_expansion_snapshot() {
    let cases = pass_cases();
    assert!(!cases.is_empty(), "no pass cases found");
    for path in cases {
        let source = std::fs::read_to_string(&path).expect("the pass case is readable");
        let expansion = expand_file(&source);
        assert!(
            !expansion.is_empty(),
            "{} derives nothing: a pass case exercises #[derive(Auditable)]",
            path.display()
        );
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a file name");
        insta::with_settings!({
            input_file => &path,
            description => "the expansion of every #[derive(Auditable)] in this pass case",
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("pass_{stem}"), expansion);
        });
    }
}

/// A derive that fails emits its errors and an impl that compiles whatever the input was (no
/// pass case can show it).
#[test]
fn errors_come_with_a_stub_impl() {
    insta::assert_snapshot!(expand_file(
        r#"
        #[derive(Auditable)]
        struct Broken {
            #[audit(trak)] name: String,
            unclassified: u8,
        }
        "#
    ));
}
