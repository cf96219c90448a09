//! Every attribute word the derive reads, as a constant (the serde_derive `symbol.rs`
//! pattern): parsing, the lists of accepted words and the "did you mean" suggestions all
//! match words through these.

use std::fmt::{self, Display};

use syn::{Ident, Path};

/// One attribute word.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Symbol(&'static str);

/// `#[audit(…)]`, the derive's own attribute.
pub(crate) const AUDIT: Symbol = Symbol("audit");

// Field words.
pub(crate) const TRACK: Symbol = Symbol("track");
pub(crate) const IGNORE: Symbol = Symbol("ignore");
pub(crate) const SECRET: Symbol = Symbol("secret");
pub(crate) const REASON: Symbol = Symbol("reason");
pub(crate) const RENAME: Symbol = Symbol("rename");
pub(crate) const ID: Symbol = Symbol("id");
pub(crate) const TARGET: Symbol = Symbol("target");
pub(crate) const FLATTEN: Symbol = Symbol("flatten");
pub(crate) const NO_FINGERPRINT: Symbol = Symbol("no_fingerprint");

// Container words.
pub(crate) const RESOURCE: Symbol = Symbol("resource");
pub(crate) const ACTIONS: Symbol = Symbol("actions");
pub(crate) const ICON: Symbol = Symbol("icon");
pub(crate) const EMBEDDED: Symbol = Symbol("embedded");
pub(crate) const CRATE: Symbol = Symbol("crate");

// The parts of `#[serde(…)]` that name things.
pub(crate) const SERDE: Symbol = Symbol("serde");
pub(crate) const RENAME_ALL: Symbol = Symbol("rename_all");
pub(crate) const SERIALIZE: Symbol = Symbol("serialize");

/// The words `#[audit(…)]` accepts on a field, in the order error messages list them.
pub(crate) const FIELD_WORDS: &[Symbol] = &[
    TRACK,
    IGNORE,
    SECRET,
    REASON,
    RENAME,
    ID,
    TARGET,
    FLATTEN,
    NO_FINGERPRINT,
];
/// The words `#[audit(…)]` accepts on the struct, in the order error messages list them.
pub(crate) const CONTAINER_WORDS: &[Symbol] = &[RESOURCE, ACTIONS, ICON, EMBEDDED, CRATE];

impl Symbol {
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl PartialEq<Symbol> for Ident {
    fn eq(&self, word: &Symbol) -> bool {
        self == word.0
    }
}

impl PartialEq<Symbol> for Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl PartialEq<Symbol> for str {
    fn eq(&self, word: &Symbol) -> bool {
        self == word.0
    }
}

impl Display for Symbol {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.0)
    }
}
