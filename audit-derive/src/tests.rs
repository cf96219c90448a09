//! Expansion snapshots: what the derive generates for representative inputs, pretty-printed
//! so reviewers can read it (`cargo insta review` after a change to `expand.rs`).

use quote::quote;

fn expand(input: proc_macro2::TokenStream) -> String {
    let input: syn::DeriveInput = syn::parse2(input).expect("test input parses");
    let output = crate::expand::derive(&input);
    let file: syn::File = syn::parse2(output.clone())
        .unwrap_or_else(|e| panic!("expansion is not valid Rust ({e}):\n{output}"));
    prettyplease::unparse(&file)
}

#[test]
fn workspace() {
    insta::assert_snapshot!(expand(quote! {
        #[audit(resource = "workspace", actions(create, write, delete), icon = "workspace.svg")]
        pub struct Workspace {
            #[audit(track, id)] pub id: Uuid,
            #[audit(track, target)] pub name: String,
            #[audit(track)] pub ttl: Option<i64>,
            #[audit(ignore, reason = "bumped on every request")] pub last_used_at: DateTime<Utc>,
            #[audit(secret)] pub agent_token: String,
        }
    }));
}

#[test]
fn flatten_and_serde_names() {
    insta::assert_snapshot!(expand(quote! {
        #[serde(rename_all = "camelCase")]
        struct Template {
            #[audit(flatten)] meta: Timestamps,
            #[audit(track, id)] template_id: u64,
            #[audit(track, rename = "acl")] #[serde(rename = "groupAcl")] group_acl: Vec<String>,
        }
    }));
}

#[test]
fn generics_get_bounds_only_where_a_parameter_appears() {
    insta::assert_snapshot!(expand(quote! {
        struct Setting<'a, V: Clone> where V: Default {
            #[audit(track, id)] key: &'a str,
            #[audit(track)] value: Option<V>,
            #[audit(secret)] seal: V,
            #[audit(ignore)] raw: V,
        }
    }));
}

#[test]
fn errors_come_with_a_stub_impl() {
    insta::assert_snapshot!(expand(quote! {
        struct Broken {
            #[audit(trak)] name: String,
            unclassified: u8,
        }
    }));
}
