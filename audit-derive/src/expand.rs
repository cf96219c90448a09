//! Generates the `Auditable` impl: the static tracking table, the registration in
//! `audit_core::resources()`, `resource_id`/`resource_target`, and the field-by-field diff.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Path};

use crate::ast::{Container, Field};
use crate::attr::Class;
use crate::case::to_snake_case;
use crate::ctxt::Ctxt;
use crate::valid;

/// The whole derive: parse, validate, expand. On error, the errors plus a stub impl so that
/// code using the type does not produce a cascade of follow-on errors.
pub fn derive(input: &DeriveInput) -> TokenStream {
    let mut cx = Ctxt::default();
    let container = Container::from_ast(&mut cx, input);
    if let Some(cont) = &container {
        valid::check(&mut cx, cont);
    }
    match (cx.check(), container) {
        (Ok(()), Some(cont)) => expand(&cont),
        (Err(errors), cont) => {
            let krate = cont
                .and_then(|c| c.attrs.krate)
                .unwrap_or_else(default_crate);
            let stub = stub_impl(input, &krate);
            quote!(#errors #stub)
        }
        (Ok(()), None) => stub_impl(input, &default_crate()),
    }
}

fn default_crate() -> Path {
    syn::parse_quote!(::audit_core)
}

fn expand(cont: &Container<'_>) -> TokenStream {
    let krate = cont.attrs.krate.clone().unwrap_or_else(default_crate);
    let ident = cont.ident;
    let (impl_generics, ty_generics, where_clause) = cont.generics.split_for_impl();
    let mut where_clause = where_clause
        .cloned()
        .unwrap_or_else(|| syn::parse_quote!(where));
    where_clause.predicates.extend(bounds(cont, &krate));

    let type_name = ident.to_string();
    let resource_type = match &cont.attrs.resource {
        Some(lit) => lit.value(),
        None => to_snake_case(type_name.trim_start_matches("r#")),
    };
    let actions = cont.attrs.actions.iter().map(|a| a.to_string());
    let icon = option_str(cont.attrs.icon.as_ref().map(syn::LitStr::value));
    let fields_table = fields_table(cont, &krate);
    let resource_id = role_accessor(cont, &krate, |f| f.attrs.id.is_some(), quote!(resource_id));
    let resource_target = role_accessor(
        cont,
        &krate,
        |f| f.attrs.target.is_some(),
        quote!(resource_target),
    );
    let diff_calls = cont.fields.iter().map(|f| diff_call(f, &krate));
    let registration =
        (cont.generics.params.is_empty() && cont.attrs.embedded.is_none()).then(|| {
            quote! {
                #[#krate::__private::linkme::distributed_slice(#krate::__private::RESOURCES)]
                #[linkme(crate = #krate::__private::linkme)]
                static __AUDIT_REGISTRATION: &#krate::ResourceSchema = &__AUDIT_SCHEMA;
            }
        });

    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, clippy::all)]
        const _: () = {
            const __AUDIT_FIELDS: &[#krate::FieldSchema] = #fields_table;
            static __AUDIT_SCHEMA: #krate::ResourceSchema = #krate::ResourceSchema::__new(
                #type_name,
                #resource_type,
                &[#(#actions),*],
                #icon,
                __AUDIT_FIELDS,
            );
            #registration

            #[automatically_derived]
            impl #impl_generics #krate::Auditable for #ident #ty_generics #where_clause {
                fn schema() -> &'static #krate::ResourceSchema {
                    &__AUDIT_SCHEMA
                }
                #resource_id
                #resource_target
                const __AUDIT_FIELDS: &'static [#krate::FieldSchema] = __AUDIT_FIELDS;
                fn __audit_diff(
                    old: ::core::option::Option<&Self>,
                    new: ::core::option::Option<&Self>,
                    out: &mut #krate::__private::DiffBuilder,
                ) {
                    #(#diff_calls)*
                }
            }
        };
    }
}

/// Bounds for field types that depend on the struct's type parameters, spanned at the field
/// type so an unsatisfied bound points at the field. Concrete field types need no bound:
/// the spanned calls in the generated body check them.
fn bounds<'a>(
    cont: &'a Container<'_>,
    krate: &'a Path,
) -> impl Iterator<Item = syn::WherePredicate> + 'a {
    cont.fields
        .iter()
        .filter(|f| f.mentions_type_param(cont.generics))
        .filter_map(move |f| {
            let ty = f.ty;
            let span = ty.span();
            let display = (f.attrs.id.is_some() || f.attrs.target.is_some())
                .then(|| quote_spanned!(span=> + ::core::fmt::Display));
            let bound = match f.attrs.class.as_ref()?.value {
                Class::Track => {
                    quote_spanned!(span=> ::core::cmp::PartialEq + #krate::__private::Serialize)
                }
                Class::Secret => quote_spanned!(span=> ::core::cmp::PartialEq),
                Class::Ignore if display.is_some() => quote_spanned!(span=> ::core::marker::Sized),
                Class::Ignore => return None,
            };
            Some(syn::parse_quote_spanned!(span=> #ty: #bound #display))
        })
}

/// The `FieldSchema` table, with flattened types' tables concatenated in place.
fn fields_table(cont: &Container<'_>, krate: &Path) -> TokenStream {
    let mut parts: Vec<TokenStream> = Vec::new();
    let mut own: Vec<TokenStream> = Vec::new();
    for field in &cont.fields {
        if field.attrs.flatten.is_some() {
            if !own.is_empty() {
                parts.push(quote!(&[#(#own),*]));
                own.clear();
            }
            let ty = field.ty;
            parts.push(quote_spanned!(ty.span()=> <#ty as #krate::Auditable>::__AUDIT_FIELDS));
        } else {
            own.push(field_schema(field, krate));
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
        const PARTS: &[&[#krate::FieldSchema]] = &[#(#parts),*];
        const N: usize = #krate::__private::fields_len(PARTS);
        const ALL: [#krate::FieldSchema; N] = #krate::__private::concat_fields::<N>(PARTS);
        const _: () = ::core::assert!(#krate::__private::first_duplicate_name(&ALL).is_none(), #message);
        &ALL
    }}
}

fn field_schema(field: &Field<'_>, krate: &Path) -> TokenStream {
    let name = &field.audit_name;
    let rust_name = &field.rust_name;
    let class = match field.attrs.class.as_ref().map(|c| c.value) {
        Some(Class::Track) => quote!(Track),
        Some(Class::Secret) => quote!(Secret),
        Some(Class::Ignore) | None => quote!(Ignore),
    };
    let reason = option_str(field.attrs.reason.as_ref().map(syn::LitStr::value));
    let is_id = field.attrs.id.is_some();
    let is_target = field.attrs.target.is_some();
    quote! {
        #krate::FieldSchema::__new(#name, #rust_name, #krate::FieldClass::#class, #reason, #is_id, #is_target)
    }
}

/// `resource_id` / `resource_target`: the marked field as text, else the first flattened
/// field whose own accessor gives a non-empty value, else `""`.
fn role_accessor(
    cont: &Container<'_>,
    krate: &Path,
    has_role: impl Fn(&Field<'_>) -> bool,
    method: TokenStream,
) -> TokenStream {
    let body = if let Some(field) = cont.fields.iter().find(|f| has_role(f)) {
        let member = field.ident;
        quote_spanned!(field.ty.span()=> #krate::__private::ToString::to_string(&self.#member))
    } else {
        let flattened: Vec<_> = cont
            .fields
            .iter()
            .filter(|f| f.attrs.flatten.is_some())
            .map(|f| {
                let (member, ty) = (f.ident, f.ty);
                quote!(<#ty as #krate::Auditable>::#method(&self.#member))
            })
            .collect();
        quote! {
            #(
                let value = #flattened;
                if !value.is_empty() {
                    return value;
                }
            )*
            #krate::__private::String::new()
        }
    };
    quote! {
        fn #method(&self) -> #krate::__private::String {
            #body
        }
    }
}

/// One field's comparison, spanned at its type so a missing `PartialEq`/`Serialize` points there.
fn diff_call(field: &Field<'_>, krate: &Path) -> TokenStream {
    let member = field.ident;
    let ty = field.ty;
    let span = ty.span();
    let name = &field.audit_name;
    let sides = quote!(old.map(|v| &v.#member), new.map(|v| &v.#member));
    if field.attrs.flatten.is_some() {
        return quote_spanned!(span=> <#ty as #krate::Auditable>::__audit_diff(#sides, out););
    }
    match field.attrs.class.as_ref().map(|c| c.value) {
        Some(Class::Track) => quote_spanned!(span=> out.tracked::<#ty>(#name, #sides);),
        Some(Class::Secret) => quote_spanned!(span=> out.secret::<#ty>(#name, #sides);),
        Some(Class::Ignore) | None => TokenStream::new(),
    }
}

fn option_str(value: Option<String>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

/// An impl that compiles whatever the input was, emitted next to the errors so that uses of
/// the type elsewhere do not add errors of their own.
fn stub_impl(input: &DeriveInput, krate: &Path) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let unreachable = quote!(::core::unreachable!(
        "`#[derive(Auditable)]` failed to compile"
    ));
    quote_spanned! {Span::call_site()=>
        #[automatically_derived]
        impl #impl_generics #krate::Auditable for #ident #ty_generics #where_clause {
            fn schema() -> &'static #krate::ResourceSchema { #unreachable }
            fn resource_id(&self) -> #krate::__private::String { #unreachable }
            fn resource_target(&self) -> #krate::__private::String { #unreachable }
            const __AUDIT_FIELDS: &'static [#krate::FieldSchema] = &[];
            fn __audit_diff(
                _: ::core::option::Option<&Self>,
                _: ::core::option::Option<&Self>,
                _: &mut #krate::__private::DiffBuilder,
            ) {
                #unreachable
            }
        }
    }
}
