//! Parses `#[audit(…)]` (and the parts of `#[serde(…)]` that name things) into a typed model.
//!
//! Each word has a slot ([`Attr`] for a word with a value, [`BoolAttr`] for a flag), and
//! [`Attr::set`] is the one place that refuses a word given twice, as in serde_derive's
//! `internals/attr.rs`. Parsing records every problem in the [`Ctxt`] and carries on, so one
//! compile shows them all. Cross-field rules (one `id`, unique names, …) live in `valid.rs`.

use proc_macro2::{Span, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::{Attribute, Ident, LitStr, Token};

use crate::case::RenameRule;
use crate::ctxt::Ctxt;
use crate::symbol::*;

/// The slot of one attribute word that takes a value: empty, or set once.
pub(crate) struct Attr<'c, T> {
    cx: &'c Ctxt,
    name: Symbol,
    span: Option<Span>,
    value: Option<T>,
}

impl<'c, T> Attr<'c, T> {
    fn none(cx: &'c Ctxt, name: Symbol) -> Self {
        Attr {
            cx,
            name,
            span: None,
            value: None,
        }
    }

    /// Sets the value given by the word at `span`; a second one is an error at its word, and
    /// the first value stays.
    fn set(&mut self, span: Span, value: T) {
        if self.value.is_some() {
            self.cx
                .error_at(span, format_args!("duplicate `{}`: remove one", self.name));
        } else {
            self.span = Some(span);
            self.value = Some(value);
        }
    }

    fn get(self) -> Option<T> {
        self.value
    }

    fn get_with_span(self) -> Option<Spanned<T>> {
        Some(Spanned {
            value: self.value?,
            span: self.span?,
        })
    }
}

impl Attr<'_, LitStr> {
    /// Parses `word = "…"` into the slot.
    fn parse_string(&mut self, meta: &ParseNestedMeta<'_>, word: &Word) -> syn::Result<()> {
        if let Some(lit) = string_value(self.cx, meta, word)? {
            self.set(word.span(), lit);
        }
        Ok(())
    }
}

/// The slot of one flag word (`id`, `flatten`, …): absent, or given once.
struct BoolAttr<'c>(Attr<'c, ()>);

impl<'c> BoolAttr<'c> {
    fn none(cx: &'c Ctxt, name: Symbol) -> Self {
        BoolAttr(Attr::none(cx, name))
    }

    fn set_true(&mut self, span: Span) {
        self.0.set(span, ());
    }

    /// Parses the flag `word`, which takes no value.
    fn parse_flag(&mut self, meta: &ParseNestedMeta<'_>, word: &Word) -> syn::Result<()> {
        no_value(self.0.cx, meta, word)?;
        self.set_true(word.span());
        Ok(())
    }

    /// Where the flag was given, if it was.
    fn get(&self) -> Option<Span> {
        self.0.span
    }
}

/// One word of `#[audit(…)]`, with its text read once (an identifier's text is fetched
/// from the compiler each time it is asked for, and a word is compared with many symbols).
pub(crate) struct Word {
    ident: Ident,
    text: String,
}

impl Word {
    fn new(ident: &Ident) -> Self {
        Word {
            ident: ident.clone(),
            text: ident.to_string(),
        }
    }

    fn span(&self) -> Span {
        self.ident.span()
    }
}

impl PartialEq<Symbol> for Word {
    fn eq(&self, symbol: &Symbol) -> bool {
        *self.text == *symbol
    }
}

impl std::fmt::Display for Word {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// A field's class keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    Track,
    Ignore,
    Secret,
}

impl Class {
    const ALL: [Class; 3] = [Class::Track, Class::Ignore, Class::Secret];

    fn from_word(word: &Word) -> Option<Class> {
        Class::ALL.into_iter().find(|class| *word == class.word())
    }

    pub(crate) fn word(self) -> Symbol {
        match self {
            Class::Track => TRACK,
            Class::Ignore => IGNORE,
            Class::Secret => SECRET,
        }
    }
}

/// A value together with the span of the word that set it.
#[derive(Clone, Debug)]
pub(crate) struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// The class slot: each class word is a flag of its own (so a repeated word is a duplicate,
/// reported by [`Attr::set`]); the first class given is the field's, and another class word
/// is a conflict.
struct ClassAttr<'c> {
    cx: &'c Ctxt,
    words: [BoolAttr<'c>; 3],
    first: Option<Spanned<Class>>,
}

impl<'c> ClassAttr<'c> {
    fn none(cx: &'c Ctxt) -> Self {
        ClassAttr {
            cx,
            words: Class::ALL.map(|class| BoolAttr::none(cx, class.word())),
            first: None,
        }
    }

    fn set(&mut self, span: Span, class: Class) {
        self.words[class as usize].set_true(span);
        match &self.first {
            None => self.first = Some(Spanned { value: class, span }),
            Some(first) if first.value != class => self.cx.error_at(
                span,
                format_args!(
                    "`{}` and `{}` are both given, but a field has exactly one class: \
                     keep one of `{TRACK}`, `{IGNORE}` or `{SECRET}`",
                    first.value.word(),
                    class.word()
                ),
            ),
            Some(_) => {}
        }
    }
}

/// Everything `#[audit(…)]` and `#[serde(…)]` say about one field.
pub(crate) struct FieldAttrs {
    pub class: Option<Spanned<Class>>,
    pub reason: Option<LitStr>,
    pub rename: Option<LitStr>,
    pub id: Option<Span>,
    pub target: Option<Span>,
    pub flatten: Option<Span>,
    /// `no_fingerprint`: a secret whose values are never fingerprinted (a PIN).
    pub no_fingerprint: Option<Span>,
    pub serde_rename: Option<String>,
    /// An `#[audit(…)]` of this field had an error: further complaints about the field (such
    /// as "not classified" after a misspelt class) would only repeat it.
    pub had_error: bool,
}

/// Everything `#[audit(…)]` and `#[serde(…)]` say about the struct.
pub(crate) struct ContainerAttrs {
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
    pub(crate) fn from_attrs(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let errors_before = cx.error_count();
        let mut class = ClassAttr::none(cx);
        let mut reason = Attr::none(cx, REASON);
        let mut rename = Attr::none(cx, RENAME);
        let mut id = BoolAttr::none(cx, ID);
        let mut target = BoolAttr::none(cx, TARGET);
        let mut flatten = BoolAttr::none(cx, FLATTEN);
        let mut no_fingerprint = BoolAttr::none(cx, NO_FINGERPRINT);
        let mut serde_rename = None;
        for attr in attrs {
            if *attr.path() == AUDIT {
                parse_audit(cx, attr, "track", |meta, word| {
                    if let Some(value) = Class::from_word(word) {
                        no_value(cx, &meta, word)?;
                        class.set(word.span(), value);
                    } else if *word == ID {
                        id.parse_flag(&meta, word)?;
                    } else if *word == TARGET {
                        target.parse_flag(&meta, word)?;
                    } else if *word == FLATTEN {
                        flatten.parse_flag(&meta, word)?;
                    } else if *word == NO_FINGERPRINT {
                        no_fingerprint.parse_flag(&meta, word)?;
                    } else if *word == REASON {
                        reason.parse_string(&meta, word)?;
                    } else if *word == RENAME {
                        rename.parse_string(&meta, word)?;
                    } else {
                        unknown_word(cx, word, FIELD_WORDS, CONTAINER_WORDS, "struct");
                        skip_value(&meta)?;
                    }
                    Ok(())
                });
            } else if *attr.path() == SERDE {
                serde_rename = serde_name(attr, RENAME).or(serde_rename);
            }
        }
        FieldAttrs {
            class: class.first,
            reason: reason.get(),
            rename: rename.get(),
            id: id.get(),
            target: target.get(),
            flatten: flatten.get(),
            no_fingerprint: no_fingerprint.get(),
            serde_rename,
            had_error: cx.error_count() > errors_before,
        }
    }
}

impl ContainerAttrs {
    pub(crate) fn from_attrs(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut resource = Attr::none(cx, RESOURCE);
        let mut actions = Attr::none(cx, ACTIONS);
        let mut icon = Attr::none(cx, ICON);
        let mut embedded = BoolAttr::none(cx, EMBEDDED);
        let mut krate = Attr::none(cx, CRATE);
        let mut serde_rename_all = None;
        for attr in attrs {
            if *attr.path() == AUDIT {
                parse_audit(cx, attr, "resource", |meta, word| {
                    let span = word.span();
                    if *word == RESOURCE {
                        resource.parse_string(&meta, word)?;
                    } else if *word == ICON {
                        icon.parse_string(&meta, word)?;
                    } else if *word == EMBEDDED {
                        embedded.parse_flag(&meta, word)?;
                    } else if *word == CRATE {
                        if let Some(lit) = string_value(cx, &meta, word)? {
                            match lit.parse::<syn::Path>() {
                                Ok(path) => krate.set(span, path),
                                Err(_) => cx.error_spanned_by(
                                    &lit,
                                    "`crate` must be a path to audit_core, e.g. `crate = \"::my_audit\"`",
                                ),
                            }
                        }
                    } else if *word == ACTIONS {
                        if let Some(list) = action_list(cx, &meta, word)? {
                            actions.set(span, list);
                        }
                    } else {
                        unknown_word(cx, word, CONTAINER_WORDS, FIELD_WORDS, "field");
                        skip_value(&meta)?;
                    }
                    Ok(())
                });
            } else if *attr.path() == SERDE
                && let Some(rule) = serde_name(attr, RENAME_ALL)
            {
                // An unknown rule is serde's error to report; we then keep Rust names.
                serde_rename_all = RenameRule::from_name(&rule);
            }
        }
        let actions = actions.get_with_span();
        ContainerAttrs {
            resource: resource.get(),
            actions_span: actions.as_ref().map(|a| a.span),
            actions: actions.map(|a| a.value).unwrap_or_default(),
            icon: icon.get(),
            embedded: embedded.get(),
            krate: krate.get(),
            serde_rename_all,
        }
    }
}

/// Runs `parse_word` on each word of one `#[audit(…)]`, with the word as a single identifier;
/// anything else (a path such as `a::b`) is reported and skipped. `example` names a word
/// that belongs in this place, for the message.
fn parse_audit(
    cx: &Ctxt,
    attr: &Attribute,
    example: &str,
    mut parse_word: impl FnMut(ParseNestedMeta<'_>, &Word) -> syn::Result<()>,
) {
    let result = attr.parse_nested_meta(|meta| match meta.path.get_ident().map(Word::new) {
        Some(word) => parse_word(meta, &word),
        None => {
            cx.error_spanned_by(
                &meta.path,
                format_args!("expected a single word such as `{example}`"),
            );
            skip_value(&meta)
        }
    });
    if let Err(e) = result {
        cx.syn_error(e);
    }
}

/// Parses `actions(create, write, …)`; records a clear error (and returns `None`) for
/// anything but a list of single words.
fn action_list(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    word: &Word,
) -> syn::Result<Option<Vec<Ident>>> {
    if !meta.input.peek(syn::token::Paren) {
        cx.error_at(
            word.span(),
            format_args!("`{ACTIONS}` takes a list, e.g. `{ACTIONS}(create, write, delete)`"),
        );
        skip_value(meta)?;
        return Ok(None);
    }
    let mut list = Vec::new();
    meta.parse_nested_meta(|action| {
        match action.path.get_ident() {
            Some(ident) if action.input.is_empty() || action.input.peek(Token![,]) => {
                list.push(ident.clone());
            }
            _ => {
                cx.error_spanned_by(
                    &action.path,
                    format_args!(
                        "each action is a single snake_case word, e.g. `{ACTIONS}(create, write)`"
                    ),
                );
                skip_value(&action)?;
            }
        }
        Ok(())
    })?;
    Ok(Some(list))
}

/// Reports an unknown word, suggesting the closest known one, or pointing out that the word
/// belongs on the other kind of item (a field word on the struct, or the reverse).
fn unknown_word(
    cx: &Ctxt,
    word: &Word,
    known: &[Symbol],
    other_place: &[Symbol],
    other_name: &str,
) {
    let text = &word.text;
    let list = known
        .iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let message = if other_place.iter().any(|w| *word == *w) {
        format!("`{text}` belongs on a {other_name}, not here; expected one of {list}")
    } else if let Some(suggestion) = audit_suggest::closest(text, known.iter().map(|w| w.as_str()))
    {
        format!(
            "unknown audit attribute `{text}`: did you mean `{suggestion}`? expected one of {list}"
        )
    } else {
        format!("unknown audit attribute `{text}`: expected one of {list}")
    };
    cx.error_at(word.span(), message);
}

/// Flags (`track`, `id`, …) take no value.
fn no_value(cx: &Ctxt, meta: &ParseNestedMeta<'_>, word: &Word) -> syn::Result<()> {
    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
        cx.error_at(
            word.span(),
            format_args!("`{word}` takes no value: write just `{word}`"),
        );
        skip_value(meta)?;
    }
    Ok(())
}

/// Parses `word = "…"`; records a clear error (and returns `None`) for anything else.
fn string_value(cx: &Ctxt, meta: &ParseNestedMeta<'_>, word: &Word) -> syn::Result<Option<LitStr>> {
    let message = format!("`{word}` needs a string value: `{word} = \"…\"`");
    if !meta.input.peek(Token![=]) {
        cx.error_at(word.span(), message);
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
        Some(token) => cx.error_spanned_by(token, message),
        None => cx.error_at(word.span(), message),
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
fn serde_name(attr: &Attribute, key: Symbol) -> Option<String> {
    let mut found = None;
    let _ = attr.parse_nested_meta(|meta| {
        if meta.path == key {
            if meta.input.peek(Token![=]) {
                found = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.input.peek(syn::token::Paren) {
                meta.parse_nested_meta(|inner| {
                    if inner.path == SERIALIZE {
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
