//! Generates the `Auditable` impl: the tracking table, the registration in
//! `audit_core::resources()`, `resource_id`/`resource_target`, and the field-by-field diff.
//!
//! Users derive `Auditable` on every domain type, so the expansion is kept cheap to compile
//! (see the compile-cost section of BENCHMARKS.md): every path goes through one short `use`
//! of `audit_core::__private`, a table row is one call with as few arguments as it needs, the
//! diff compares the two snapshots' fields directly, with no closures, and the registration
//! (a function returning the table) skips linkme's attribute macro where it can
//! (`audit_core::__register_resource`). The
//! generated functions are `#[inline]`: like serde's generic impls, they are compiled where
//! they are used, so a crate that only defines audited types does no code generation for them.

use proc_macro2::{Group, Spacing, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::{DeriveInput, Ident, Path};

use crate::ast::{Container, Field};
use crate::attr::Class;
use crate::case::to_snake_case;
use crate::ctxt::Ctxt;
use crate::valid;

/// The whole derive: parse, validate, expand. On error, the errors plus a stub impl so that
/// code using the type does not produce a cascade of follow-on errors.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::default();
    let container = Container::from_ast(&cx, input);
    if let Some(cont) = &container {
        valid::check(&cx, cont);
    }
    match (cx.check(), container) {
        (Ok(()), Some(cont)) => expand(&cont),
        (Err(errors), cont) => {
            let stub = stub_impl(input, krate(cont.and_then(|c| c.attrs.krate).as_ref()));
            quote!(#errors #stub)
        }
        (Ok(()), None) => stub_impl(input, krate(None)),
    }
}

/// The path to audit_core: `crate = "…"`, else `::audit_core`.
fn krate(path: Option<&Path>) -> TokenStream {
    match path {
        Some(path) => path.to_token_stream(),
        None => quote!(::audit_core),
    }
}

fn expand(cont: &Container<'_>) -> TokenStream {
    let krate = krate(cont.attrs.krate.as_ref());
    // The local name of `audit_core::__private` inside the generated block.
    let p = &Ident::new("__audit", Span::call_site());
    let ident = cont.ident;
    let (impl_generics, ty_generics, where_clause) = cont.generics.split_for_impl();
    let mut where_clause = where_clause.cloned().unwrap_or_else(|| syn::WhereClause {
        where_token: Default::default(),
        predicates: Default::default(),
    });
    let bounds: Vec<_> = bounds(cont, p).collect();
    // A parameter bounded where it is declared (`T: Clone`) and again here for its field
    // (`T: PartialEq + Serialize`) trips this pedantic lint, in code the user cannot change.
    // No other lint fires on the expansion (audit-tests/tests/generated_code_lints.rs).
    let allow = (!bounds.is_empty()).then(|| {
        quote! {
            #[allow(
                clippy::type_repetition_in_bounds,
                reason = "#[derive(Auditable)] bounds each generic field type on its own"
            )]
        }
    });
    where_clause.predicates.extend(bounds);

    let type_name = ident.to_string();
    let resource_type = match &cont.attrs.resource {
        Some(lit) => lit.value(),
        None => to_snake_case(type_name.trim_start_matches("r#")),
    };
    let actions = cont.attrs.actions.iter().map(|a| a.to_string());
    let icon = cont
        .attrs
        .icon
        .as_ref()
        .map(syn::LitStr::value)
        .unwrap_or_default();
    let fields_table = fields_table(cont, p);
    let resource_id = role_accessor(cont, p, |f| f.attrs.id.is_some(), quote!(resource_id));
    let resource_target = role_accessor(
        cont,
        p,
        |f| f.attrs.target.is_some(),
        quote!(resource_target),
    );
    let diff_calls = cont.fields.iter().map(|f| diff_call(f, p));
    let table =
        quote!(&#p::resource(#type_name, #resource_type, &[#(#actions),*], #icon, #fields_table));
    // The table is the impl's associated constant, and the registration holds the function
    // that returns it (`Auditable::schema`). A type with type or const parameters cannot name
    // its impl without choosing them; its table, which does not depend on them (a flattened
    // field's type may not mention them), is a constant beside the impl, registered once for
    // every instantiation.
    let lifetimes_only = cont.generics.type_params().next().is_none()
        && cont.generics.const_params().next().is_none();
    let registered = cont.attrs.embedded.is_none();
    let (shared_table, schema, registration) = if lifetimes_only {
        let self_ty = static_lifetimes(&quote!(#ident #ty_generics));
        let registration =
            registered.then(|| quote!(#p::register!(<#self_ty as #p::Auditable>::schema);));
        (None, table, registration)
    } else {
        let shared = quote!(const __AUDIT_SCHEMA: &#p::ResourceSchema = #table;);
        let registration = registered.then(|| {
            quote! {
                fn __audit_schema() -> &'static #p::ResourceSchema {
                    __AUDIT_SCHEMA
                }
                #p::register!(__audit_schema);
            }
        });
        (Some(shared), quote!(__AUDIT_SCHEMA), registration)
    };

    quote! {
        const _: () = {
            use #krate::__private as #p;
            #shared_table
            #registration

            #[automatically_derived]
            #allow
            impl #impl_generics #p::Auditable for #ident #ty_generics #where_clause {
                const __SCHEMA: &'static #p::ResourceSchema = #schema;
                #resource_id
                #resource_target
                #[inline]
                fn __audit_diff(old: &Self, new: &Self, out: &mut #p::DiffBuilder<'_>) {
                    #(#diff_calls)*
                }
            }
        };
    }
}

/// Bounds for field types that depend on the struct's generic parameters, spanned at the
/// field type so an unsatisfied bound points at the field. Concrete field types need no
/// bound: the spanned calls in the generated body check them.
fn bounds<'a>(
    cont: &'a Container<'_>,
    p: &'a Ident,
) -> impl Iterator<Item = syn::WherePredicate> + 'a {
    cont.fields
        .iter()
        .filter(|f| f.mentions_generic_param(cont.generics))
        .filter_map(move |f| {
            let ty = f.ty;
            let span = f.ty_span;
            let display = (f.attrs.id.is_some() || f.attrs.target.is_some())
                .then(|| quote_spanned!(span=> + ::core::fmt::Display));
            let bound = match f.attrs.class.as_ref()?.value {
                Class::Track => quote_spanned!(span=> ::core::cmp::PartialEq + #p::Serialize),
                Class::Secret if f.attrs.no_fingerprint.is_some() => {
                    quote_spanned!(span=> ::core::cmp::PartialEq)
                }
                Class::Secret => quote_spanned!(span=> ::core::cmp::PartialEq + #p::Serialize),
                Class::Ignore if display.is_some() => quote_spanned!(span=> ::core::marker::Sized),
                Class::Ignore => return None,
            };
            Some(syn::parse_quote_spanned!(span=> #ty: #bound #display))
        })
}

/// The rows of the tracking table, with flattened types' rows concatenated in place.
fn fields_table(cont: &Container<'_>, p: &Ident) -> TokenStream {
    let mut parts: Vec<TokenStream> = Vec::new();
    let mut own: Vec<TokenStream> = Vec::new();
    for field in &cont.fields {
        if field.attrs.flatten.is_some() {
            if !own.is_empty() {
                parts.push(quote!(&[#(#own),*]));
                own.clear();
            }
            // The table lives outside the impl, where the struct's lifetimes are not in scope;
            // a table never depends on a lifetime, so `'static` stands in for each.
            let ty = static_lifetimes(field.ty);
            let span = field.ty_span;
            parts.push(quote_spanned!(span=> <#ty as #p::Auditable>::__SCHEMA.fields));
        } else {
            own.push(field_row(field, p));
        }
    }
    if parts.is_empty() {
        return quote!(&[#(#own),*]);
    }
    if !own.is_empty() {
        parts.push(quote!(&[#(#own),*]));
    }
    let message = format!(
        "two fields of `{}` have the same audit name after flattening: give one a different `rename`",
        cont.ident
    );
    quote! {{
        const PARTS: &[&[#p::FieldSchema]] = &[#(#parts),*];
        const N: usize = #p::fields_len(PARTS);
        const ALL: [#p::FieldSchema; N] = #p::concat_fields::<N>(PARTS);
        const _: () = ::core::assert!(#p::first_duplicate_name(&ALL).is_none(), #message);
        &ALL
    }}
}

/// `ty` with every lifetime replaced by `'static`.
fn static_lifetimes(ty: &impl ToTokens) -> TokenStream {
    fn replace(tokens: TokenStream) -> TokenStream {
        let mut after_apostrophe = false;
        tokens
            .into_iter()
            .map(|token| {
                let token = match token {
                    TokenTree::Ident(ident) if after_apostrophe => {
                        TokenTree::Ident(syn::Ident::new("static", ident.span()))
                    }
                    TokenTree::Group(group) => {
                        let mut new = Group::new(group.delimiter(), replace(group.stream()));
                        new.set_span(group.span());
                        TokenTree::Group(new)
                    }
                    other => other,
                };
                after_apostrophe = matches!(
                    &token,
                    TokenTree::Punct(p) if p.as_char() == '\'' && p.spacing() == Spacing::Joint
                );
                token
            })
            .collect()
    }
    replace(quote!(#ty))
}

/// One row: `track("name")`, plus a modifier for each thing that differs from the plain case,
/// e.g. `ignore("updated_at").with_reason("…")` or `track("acl").with_rust_name("group_acl")`.
fn field_row(field: &Field<'_>, p: &Ident) -> TokenStream {
    let name = &field.audit_name;
    let constructor = match field.attrs.class.as_ref().map(|c| c.value) {
        Some(Class::Track) => quote!(track),
        Some(Class::Secret) => quote!(secret),
        Some(Class::Ignore) | None => quote!(ignore),
    };
    let mut row = quote!(#p::#constructor(#name));
    if field.rust_name != field.audit_name {
        let rust_name = &field.rust_name;
        row.extend(quote!(.with_rust_name(#rust_name)));
    }
    if let Some(reason) = &field.attrs.reason {
        row.extend(quote!(.with_reason(#reason)));
    }
    if field.attrs.id.is_some() {
        row.extend(quote!(.as_id()));
    }
    if field.attrs.target.is_some() {
        row.extend(quote!(.as_target()));
    }
    row
}

/// `resource_id` / `resource_target`: the marked field as text, else the first flattened
/// field whose own accessor gives a non-empty value. Without either, nothing: the trait's
/// default gives `""`.
fn role_accessor(
    cont: &Container<'_>,
    p: &Ident,
    has_role: impl Fn(&Field<'_>) -> bool,
    method: TokenStream,
) -> Option<TokenStream> {
    let body = if let Some(field) = cont.fields.iter().find(|f| has_role(f)) {
        let member = field.ident;
        let span = field.ty_span;
        quote_spanned!(span=> #p::ToString::to_string(&self.#member))
    } else {
        let flattened: Vec<_> = cont
            .fields
            .iter()
            .filter(|f| f.attrs.flatten.is_some())
            .map(|f| {
                let (member, ty) = (f.ident, f.ty);
                quote!(<#ty as #p::Auditable>::#method(&self.#member))
            })
            .collect();
        if flattened.is_empty() {
            return None;
        }
        quote! {
            #(
                let value = #flattened;
                if !value.is_empty() {
                    return value;
                }
            )*
            #p::String::new()
        }
    };
    Some(quote! {
        #[inline]
        fn #method(&self) -> #p::String {
            #body
        }
    })
}

/// One field's comparison, spanned at its type so a missing `PartialEq`/`Serialize` points there.
fn diff_call(field: &Field<'_>, p: &Ident) -> TokenStream {
    let member = field.ident;
    let span = field.ty_span;
    let name = &field.audit_name;
    if field.attrs.flatten.is_some() {
        let ty = field.ty;
        return quote_spanned! {span=>
            <#ty as #p::Auditable>::__audit_diff(&old.#member, &new.#member, out);
        };
    }
    match field.attrs.class.as_ref().map(|c| c.value) {
        Some(Class::Track) => {
            quote_spanned!(span=> out.tracked(#name, &old.#member, &new.#member);)
        }
        Some(Class::Secret) if field.attrs.no_fingerprint.is_some() => {
            quote_spanned!(span=> out.secret_unfingerprinted(#name, &old.#member, &new.#member);)
        }
        Some(Class::Secret) => {
            quote_spanned!(span=> out.secret(#name, &old.#member, &new.#member);)
        }
        Some(Class::Ignore) | None => TokenStream::new(),
    }
}

/// An impl that compiles whatever the input was, emitted next to the errors so that uses of
/// the type elsewhere do not add errors of their own.
fn stub_impl(input: &DeriveInput, krate: TokenStream) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote_spanned! {Span::call_site()=>
        #[automatically_derived]
        impl #impl_generics #krate::Auditable for #ident #ty_generics #where_clause {
            const __SCHEMA: &'static #krate::ResourceSchema = #krate::__private::NO_SCHEMA;
            fn __audit_diff(_: &Self, _: &Self, _: &mut #krate::__private::DiffBuilder<'_>) {
                ::core::unreachable!("`#[derive(Auditable)]` failed to compile")
            }
        }
    }
}
