//! The derive input as a typed model: a struct with named fields and parsed attributes.
//!
//! Anything that is not a struct with named fields is rejected here, on the offending token.

use proc_macro2::{Span, TokenTree};
use syn::{Data, DeriveInput, Fields, GenericParam, Generics, Ident, Type};

use crate::attr::{ContainerAttrs, FieldAttrs};
use crate::ctxt::Ctxt;

/// A struct being derived.
pub(crate) struct Container<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub attrs: ContainerAttrs,
    pub fields: Vec<Field<'a>>,
}

/// One named field.
pub(crate) struct Field<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    /// The span of the whole type, where errors about the field's type point (computed once:
    /// finding it means printing the type).
    pub ty_span: Span,
    pub attrs: FieldAttrs,
    /// The Rust name without `r#`.
    pub rust_name: String,
    /// `rename`, else the serde name, else the Rust name.
    pub audit_name: String,
}

impl<'a> Container<'a> {
    /// Builds the model; `None` (with errors recorded) if the input cannot be audited at all.
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let named = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => named,
                Fields::Unnamed(fields) => {
                    cx.error_spanned_by(
                        fields,
                        "`Auditable` needs named fields: a tuple struct's fields have no names \
                         to show in the audit log; use `struct Name { field: Type, … }`",
                    );
                    return None;
                }
                Fields::Unit => {
                    cx.error_spanned_by(
                        &input.ident,
                        "`Auditable` needs named fields: a unit struct has nothing to audit",
                    );
                    return None;
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    "`Auditable` can only be derived for structs with named fields, not enums; \
                     audit the struct that holds this enum and mark the field `track`",
                );
                return None;
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "`Auditable` can only be derived for structs with named fields, not unions",
                );
                return None;
            }
        };
        let attrs = ContainerAttrs::from_attrs(cx, &input.attrs);
        let fields = named
            .named
            .iter()
            .filter_map(|field| {
                let ident = field.ident.as_ref()?;
                let field_attrs = FieldAttrs::from_attrs(cx, &field.attrs);
                let rust_name = ident.to_string().trim_start_matches("r#").to_owned();
                let audit_name = match (&field_attrs.rename, &field_attrs.serde_rename) {
                    (Some(rename), _) => rename.value(),
                    (None, Some(serde_name)) => serde_name.clone(),
                    (None, None) => match attrs.serde_rename_all {
                        Some(rule) => rule.apply_to_field(&rust_name),
                        None => rust_name.clone(),
                    },
                };
                Some(Field {
                    ident,
                    ty: &field.ty,
                    ty_span: syn::spanned::Spanned::span(&field.ty),
                    attrs: field_attrs,
                    rust_name,
                    audit_name,
                })
            })
            .collect();
        Some(Container {
            ident: &input.ident,
            generics: &input.generics,
            attrs,
            fields,
        })
    }
}

impl Field<'_> {
    /// Whether this field's type names one of the struct's type or const parameters: such a
    /// type is only known inside the impl, not in the tracking table beside it.
    pub(crate) fn mentions_generic_param(&self, generics: &Generics) -> bool {
        let params: Vec<&Ident> = generics
            .params
            .iter()
            .filter_map(|param| match param {
                GenericParam::Type(param) => Some(&param.ident),
                GenericParam::Const(param) => Some(&param.ident),
                GenericParam::Lifetime(_) => None,
            })
            .collect();
        let ty = self.ty;
        !params.is_empty() && tokens_mention(quote::quote!(#ty).into_iter(), &params)
    }
}

fn tokens_mention(tokens: impl Iterator<Item = TokenTree>, names: &[&Ident]) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => names.iter().any(|n| **n == ident),
        TokenTree::Group(group) => tokens_mention(group.stream().into_iter(), names),
        _ => false,
    })
}
