//! Parses `#[audit(…)]` (and the parts of `#[serde(…)]` that name things) into a typed model.
//!
//! Parsing records every problem in the [`Ctxt`] and carries on, so one compile shows them
//! all. Cross-field rules (one `id`, unique names, …) live in `valid.rs`.

use proc_macro2::{Span, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::{Attribute, Ident, LitStr, Token};

use crate::case::RenameRule;
use crate::ctxt::Ctxt;
use crate::suggest::closest;

/// The words `#[audit(…)]` accepts on a field.
pub const FIELD_WORDS: &[&str] = &[
    "track", "ignore", "secret", "reason", "rename", "id", "target", "flatten",
];
/// The words `#[audit(…)]` accepts on the struct.
pub const CONTAINER_WORDS: &[&str] = &["resource", "actions", "icon", "embedded", "crate"];

/// A field's class keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Track,
    Ignore,
    Secret,
}

impl Class {
    pub fn word(self) -> &'static str {
        match self {
            Class::Track => "track",
            Class::Ignore => "ignore",
            Class::Secret => "secret",
        }
    }
}

/// A value together with the span of the word that set it.
#[derive(Clone, Debug)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// Everything `#[audit(…)]` and `#[serde(…)]` say about one field.
#[derive(Default)]
pub struct FieldAttrs {
    pub class: Option<Spanned<Class>>,
    pub reason: Option<LitStr>,
    pub rename: Option<LitStr>,
    pub id: Option<Span>,
    pub target: Option<Span>,
    pub flatten: Option<Span>,
    pub serde_rename: Option<String>,
    /// An `#[audit(…)]` of this field had an error: further complaints about the field (such
    /// as "not classified" after a misspelt class) would only repeat it.
    pub had_error: bool,
}

/// Everything `#[audit(…)]` and `#[serde(…)]` say about the struct.
#[derive(Default)]
pub struct ContainerAttrs {
    pub resource: Option<LitStr>,
    pub actions: Vec<Ident>,
    pub actions_span: Option<Span>,
    pub icon: Option<LitStr>,
    /// `embedded`: only flattened into other types, not a resource of its own.
    pub embedded: Option<Span>,
    pub krate: Option<syn::Path>,
    pub serde_rename_all: Option<RenameRule>,
}

impl FieldAttrs {
    pub fn from_attrs(cx: &mut Ctxt, attrs: &[Attribute]) -> Self {
        let mut out = FieldAttrs::default();
        let errors_before = cx.error_count();
        for attr in attrs {
            if attr.path().is_ident("audit") {
                let result = attr.parse_nested_meta(|meta| out.parse_word(cx, meta));
                if let Err(e) = result {
                    cx.syn_error(e);
                }
            } else if attr.path().is_ident("serde") {
                out.serde_rename = serde_rename(attr, "rename").or(out.serde_rename.take());
            }
        }
        out.had_error = cx.error_count() > errors_before;
        out
    }

    fn parse_word(&mut self, cx: &mut Ctxt, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        let Some(word) = meta.path.get_ident().map(Ident::to_string) else {
            cx.error_spanned_by(&meta.path, "expected a single word such as `track`");
            return skip_value(&meta);
        };
        let span = meta.path.span_of_path();
        match word.as_str() {
            "track" | "ignore" | "secret" => {
                let class = match word.as_str() {
                    "track" => Class::Track,
                    "ignore" => Class::Ignore,
                    _ => Class::Secret,
                };
                no_value(cx, &meta, &word)?;
                match &self.class {
                    Some(prev) if prev.value == class => {
                        cx.error_at(span, format_args!("duplicate `{word}`: remove one"));
                    }
                    Some(prev) => cx.error_at(
                        span,
                        format_args!(
                            "`{}` and `{word}` are both given, but a field has exactly one class: \
                             keep one of `track`, `ignore` or `secret`",
                            prev.value.word()
                        ),
                    ),
                    None => self.class = Some(Spanned { value: class, span }),
                }
            }
            "id" | "target" | "flatten" => {
                no_value(cx, &meta, &word)?;
                let slot = match word.as_str() {
                    "id" => &mut self.id,
                    "target" => &mut self.target,
                    _ => &mut self.flatten,
                };
                if slot.is_some() {
                    cx.error_at(span, format_args!("duplicate `{word}`: remove one"));
                } else {
                    *slot = Some(span);
                }
            }
            "reason" | "rename" => {
                let lit = string_value(cx, &meta, &word)?;
                let slot = if word == "reason" {
                    &mut self.reason
                } else {
                    &mut self.rename
                };
                match (slot.is_some(), lit) {
                    (true, _) => cx.error_at(span, format_args!("duplicate `{word}`: remove one")),
                    (false, lit) => *slot = lit,
                }
            }
            other => {
                unknown_word(cx, span, other, FIELD_WORDS, CONTAINER_WORDS, "struct");
                skip_value(&meta)?;
            }
        }
        Ok(())
    }
}

impl ContainerAttrs {
    pub fn from_attrs(cx: &mut Ctxt, attrs: &[Attribute]) -> Self {
        let mut out = ContainerAttrs::default();
        for attr in attrs {
            if attr.path().is_ident("audit") {
                let result = attr.parse_nested_meta(|meta| out.parse_word(cx, meta));
                if let Err(e) = result {
                    cx.syn_error(e);
                }
            } else if attr.path().is_ident("serde")
                && let Some(rule) = serde_rename(attr, "rename_all")
            {
                // An unknown rule is serde's error to report; we then keep Rust names.
                out.serde_rename_all = RenameRule::from_name(&rule);
            }
        }
        out
    }

    fn parse_word(&mut self, cx: &mut Ctxt, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        let Some(word) = meta.path.get_ident().map(Ident::to_string) else {
            cx.error_spanned_by(&meta.path, "expected a single word such as `resource`");
            return skip_value(&meta);
        };
        let span = meta.path.span_of_path();
        let duplicate = |cx: &mut Ctxt| {
            cx.error_at(span, format_args!("duplicate `{word}`: remove one"));
        };
        match word.as_str() {
            "resource" | "icon" => {
                let lit = string_value(cx, &meta, &word)?;
                let slot = if word == "resource" {
                    &mut self.resource
                } else {
                    &mut self.icon
                };
                if slot.is_some() {
                    duplicate(cx);
                } else {
                    *slot = lit;
                }
            }
            "embedded" => {
                no_value(cx, &meta, &word)?;
                if self.embedded.is_some() {
                    duplicate(cx);
                }
                self.embedded = Some(span);
            }
            "crate" => {
                let lit = string_value(cx, &meta, &word)?;
                if self.krate.is_some() {
                    duplicate(cx);
                } else if let Some(lit) = lit {
                    match lit.parse::<syn::Path>() {
                        Ok(path) => self.krate = Some(path),
                        Err(_) => cx.error_spanned_by(
                            &lit,
                            "`crate` must be a path to audit_core, e.g. `crate = \"::my_audit\"`",
                        ),
                    }
                }
            }
            "actions" => {
                if self.actions_span.is_some() {
                    duplicate(cx);
                }
                self.actions_span = Some(span);
                if !meta.input.peek(syn::token::Paren) {
                    cx.error_at(
                        span,
                        "`actions` takes a list, e.g. `actions(create, write, delete)`",
                    );
                    return skip_value(&meta);
                }
                meta.parse_nested_meta(|action| {
                    match action.path.get_ident() {
                        Some(ident) if action.input.is_empty() || action.input.peek(Token![,]) => {
                            self.actions.push(ident.clone());
                        }
                        _ => {
                            cx.error_spanned_by(
                                &action.path,
                                "each action is a single snake_case word, e.g. `actions(create, write)`",
                            );
                            skip_value(&action)?;
                        }
                    }
                    Ok(())
                })?;
            }
            other => {
                unknown_word(cx, span, other, CONTAINER_WORDS, FIELD_WORDS, "field");
                skip_value(&meta)?;
            }
        }
        Ok(())
    }
}

/// Reports an unknown word, suggesting the closest known one, or pointing out that the word
/// belongs on the other kind of item (a field word on the struct, or the reverse).
fn unknown_word(
    cx: &mut Ctxt,
    span: Span,
    word: &str,
    known: &[&str],
    other_place: &[&str],
    other_name: &str,
) {
    let list = known
        .iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let message = if other_place.contains(&word) {
        format!("`{word}` belongs on a {other_name}, not here; expected one of {list}")
    } else if let Some(suggestion) = closest(word, known) {
        format!(
            "unknown audit attribute `{word}`: did you mean `{suggestion}`? expected one of {list}"
        )
    } else {
        format!("unknown audit attribute `{word}`: expected one of {list}")
    };
    cx.error_at(span, message);
}

/// Flags (`track`, `id`, …) take no value.
fn no_value(cx: &mut Ctxt, meta: &ParseNestedMeta<'_>, word: &str) -> syn::Result<()> {
    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
        cx.error_at(
            meta.path.span_of_path(),
            format_args!("`{word}` takes no value: write just `{word}`"),
        );
        skip_value(meta)?;
    }
    Ok(())
}

/// Parses `word = "…"`; records a clear error (and returns `None`) for anything else.
fn string_value(
    cx: &mut Ctxt,
    meta: &ParseNestedMeta<'_>,
    word: &str,
) -> syn::Result<Option<LitStr>> {
    if !meta.input.peek(Token![=]) {
        cx.error_at(
            meta.path.span_of_path(),
            format_args!("`{word}` needs a string value: `{word} = \"…\"`"),
        );
        skip_value(meta)?;
        return Ok(None);
    }
    let value = meta.value()?;
    if value.peek(LitStr) {
        return Ok(Some(value.parse()?));
    }
    let first = value.fork().parse::<TokenTree>().ok();
    skip_until_comma(value)?;
    match first {
        Some(token) => cx.error_spanned_by(
            token,
            format_args!("`{word}` needs a string value: `{word} = \"…\"`"),
        ),
        None => cx.error_at(
            meta.path.span_of_path(),
            format_args!("`{word}` needs a string value: `{word} = \"…\"`"),
        ),
    }
    Ok(None)
}

/// Consumes whatever value follows a word (`= …` or `(…)`), so parsing can continue.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.input.parse::<Token![=]>()?;
        skip_until_comma(meta.input)
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<TokenTree>().map(drop)
    } else {
        Ok(())
    }
}

fn skip_until_comma(input: ParseStream<'_>) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// Reads `#[serde(key = "…")]` or `#[serde(key(serialize = "…"))]`; anything else in the
/// attribute is skipped (serde's own derive reports serde mistakes).
fn serde_rename(attr: &Attribute, key: &str) -> Option<String> {
    let mut found = None;
    let _ = attr.parse_nested_meta(|meta| {
        if meta.path.is_ident(key) {
            if meta.input.peek(Token![=]) {
                found = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.input.peek(syn::token::Paren) {
                meta.parse_nested_meta(|inner| {
                    if inner.path.is_ident("serialize") {
                        found = Some(inner.value()?.parse::<LitStr>()?.value());
                    } else {
                        skip_value(&inner)?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        } else {
            skip_value(&meta)
        }
    });
    found
}

trait PathSpan {
    fn span_of_path(&self) -> Span;
}

impl PathSpan for syn::Path {
    fn span_of_path(&self) -> Span {
        match self.get_ident() {
            Some(ident) => ident.span(),
            None => syn::spanned::Spanned::span(self),
        }
    }
}
