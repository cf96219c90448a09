//! [`AdditionalKey`]: a query key an application defines for a field of its events'
//! `additional_fields`, with the values it accepts; [`KeyError`] when a key name is unusable;
//! and [`BUILD_REASON`], the ready-made key of Coder's workspace builds.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use super::echo;
use super::key::Key;

/// The longest additional key name, in characters.
const MAX_KEY_LEN: usize = 64;

/// What a key name must be, said after every [`KeyError`] but a built-in clash.
const RULE: &str = "a query key must be non-empty, at most 64 characters, and made of ASCII \
                    letters, digits, '_', '-' and '.'";

/// Coder's workspace build reasons: the values [`BUILD_REASON`] accepts.
pub const BUILD_REASONS: &[&str] = &["initiator", "autostart", "autostop", "dormancy"];

/// `build_reason`: why a workspace build ran, one of [`BUILD_REASONS`] (Coder records it in
/// the `additional_fields` of its `workspace_build` events).
///
/// No vocabulary has it unless the application adds it:
///
/// ```
/// use audit_core::query::{BUILD_REASON, Vocabulary};
///
/// let vocabulary = Vocabulary::registered().with_key(BUILD_REASON);
/// let filter = vocabulary.parse("build_reason:autostart")?;
/// assert_eq!(filter.additional("build_reason"), Some("autostart"));
/// assert!(vocabulary.parse("build_reason:cron").is_err());
/// assert!(Vocabulary::registered().parse("build_reason:autostart").is_err());
/// # Ok::<(), audit_core::query::QueryError>(())
/// ```
pub const BUILD_REASON: AdditionalKey = AdditionalKey::one_of("build_reason", BUILD_REASONS);

/// A query key defined by the application: `key:value` selects the events whose
/// `additional_fields[key]` is `value` (numbers and booleans compare by their JSON text).
///
/// The name is valid by construction: 1 to 64 lower-case ASCII letters, digits, `_`, `-` and
/// `.`, and not a built-in [`Key`]. Constants are checked when the program compiles; names
/// from users (a flag, a config file) are checked by [`FromStr`], which folds ASCII
/// upper case to lower case and returns a [`KeyError`]:
///
/// ```
/// use audit_core::query::{AdditionalKey, KeyError, Vocabulary};
///
/// const REGION: AdditionalKey = AdditionalKey::one_of("region", &["eu", "us"]);
/// let owner: AdditionalKey = "Workspace_Owner".parse()?;
/// assert_eq!(owner.name(), "workspace_owner");
///
/// let vocabulary = Vocabulary::new().with_key(REGION).with_key(owner);
/// assert!(vocabulary.parse("region:eu workspace_owner:ann").is_ok());
///
/// let err = "a b".parse::<AdditionalKey>().unwrap_err();
/// assert!(matches!(err, KeyError::Character { character: ' ', .. }));
/// assert!(err.to_string().contains("ASCII letters, digits"));
/// # Ok::<(), KeyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AdditionalKey {
    name: Cow<'static, str>,
    /// `None`: any non-empty value.
    allowed: Option<&'static [&'static str]>,
}

impl AdditionalKey {
    /// A key accepting only the `allowed` values (case-sensitive).
    ///
    /// # Panics
    ///
    /// If `name` is not a valid key name (see the type's docs) — in a `const`, the program
    /// does not compile. Use [`FromStr`] for names that come from users.
    pub const fn one_of(name: &'static str, allowed: &'static [&'static str]) -> Self {
        AdditionalKey {
            name: Cow::Borrowed(checked(name)),
            allowed: Some(allowed),
        }
    }

    /// A key accepting any non-empty value.
    ///
    /// # Panics
    ///
    /// As [`one_of`](Self::one_of).
    pub const fn any(name: &'static str) -> Self {
        AdditionalKey {
            name: Cow::Borrowed(checked(name)),
            allowed: None,
        }
    }

    /// The key as written in a query.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The values the key accepts, or `None` for any non-empty value.
    pub fn allowed(&self) -> Option<&'static [&'static str]> {
        self.allowed
    }
}

impl FromStr for AdditionalKey {
    type Err = KeyError;

    /// A key accepting any non-empty value, named `name` with ASCII upper case folded.
    fn from_str(name: &str) -> Result<Self, KeyError> {
        Ok(AdditionalKey {
            name: Cow::Owned(valid_name(name)?),
            allowed: None,
        })
    }
}

impl fmt::Display for AdditionalKey {
    /// The name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Why a name cannot be a query key. Its `Display` says what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The name is empty.
    Empty,
    /// The name is longer than 64 characters.
    TooLong {
        /// The name, as given.
        name: String,
    },
    /// The name has a character a key cannot have.
    Character {
        /// The name, as given.
        name: String,
        /// Its first character that is not an ASCII letter, digit, `_`, `-` or `.`.
        character: char,
    },
    /// The name is a built-in key, which every vocabulary has already.
    BuiltIn(Key),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty => write!(f, "a query key cannot be empty: {RULE}"),
            KeyError::TooLong { name } => {
                write!(f, "query key {} is too long: {RULE}", echo::quoted(name))
            }
            KeyError::Character { name, character } => write!(
                f,
                "query key {} has '{}' (U+{:04X}): {RULE}",
                echo::quoted(name),
                echo::bare(&character.to_string()),
                u32::from(*character)
            ),
            KeyError::BuiltIn(key) => write!(
                f,
                "query key \"{key}\" is a built-in key: every vocabulary has it already, \
                 so do not add it; name an additional key after another field"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// `name` with ASCII upper case folded, if it is a valid additional key name.
pub(super) fn valid_name(name: &str) -> Result<String, KeyError> {
    let folded = name.to_ascii_lowercase();
    match fault(&folded) {
        None => Ok(folded),
        Some(Fault::Empty) => Err(KeyError::Empty),
        Some(Fault::TooLong) => Err(KeyError::TooLong {
            name: name.to_owned(),
        }),
        Some(Fault::Character(at)) => Err(KeyError::Character {
            name: name.to_owned(),
            character: folded[at..].chars().next().unwrap_or_default(),
        }),
        Some(Fault::BuiltIn(key)) => Err(KeyError::BuiltIn(key)),
    }
}

/// What is wrong with a (folded) key name; `const` so that constants are checked when the
/// program compiles.
enum Fault {
    Empty,
    TooLong,
    /// The byte offset of the first bad character.
    Character(usize),
    BuiltIn(Key),
}

const fn fault(name: &str) -> Option<Fault> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Some(Fault::Empty);
    }
    let mut i = 0;
    while i < bytes.len() {
        if !matches!(bytes[i], b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.') {
            return Some(Fault::Character(i));
        }
        i += 1;
    }
    // Only lower-case ASCII from here on: bytes are characters, and ignoring ASCII case
    // (the comparison `const` allows) is comparing exactly.
    if bytes.len() > MAX_KEY_LEN {
        return Some(Fault::TooLong);
    }
    let mut k = 0;
    while k < Key::ALL.len() {
        if name.eq_ignore_ascii_case(Key::ALL[k].name()) {
            return Some(Fault::BuiltIn(Key::ALL[k]));
        }
        k += 1;
    }
    None
}

/// `name`, if it is a valid key name as written (no folding); panics otherwise.
const fn checked(name: &'static str) -> &'static str {
    match fault(name) {
        None => name,
        Some(Fault::Empty) => panic!("a query key cannot be empty"),
        Some(Fault::TooLong) => panic!("a query key is at most 64 characters"),
        Some(Fault::Character(_)) => panic!(
            "a query key is made of lower-case ASCII letters, digits, '_', '-' and '.' \
             (FromStr folds upper case for names from users)"
        ),
        Some(Fault::BuiltIn(_)) => panic!("a query key cannot be a built-in key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_are_folded_to_lower_case() {
        assert_eq!(valid_name("build_number"), Ok("build_number".into()));
        assert_eq!(valid_name("Region"), Ok("region".into()));
        assert_eq!(valid_name("a-b.c_9"), Ok("a-b.c_9".into()));
        assert_eq!(valid_name(&"k".repeat(64)), Ok("k".repeat(64)));
        assert_eq!(BUILD_REASON.name(), "build_reason");
        assert_eq!(BUILD_REASON.allowed(), Some(BUILD_REASONS));
        assert_eq!(AdditionalKey::any("x").allowed(), None);
    }

    #[test]
    fn bad_names_say_what_is_wrong() {
        assert_eq!(valid_name(""), Err(KeyError::Empty));
        assert_eq!(
            valid_name("Username"),
            Err(KeyError::BuiltIn(Key::Username))
        );
        assert_eq!(
            valid_name("a:b"),
            Err(KeyError::Character {
                name: "a:b".into(),
                character: ':'
            })
        );
        assert_eq!(
            valid_name("région"),
            Err(KeyError::Character {
                name: "région".into(),
                character: 'é'
            })
        );
        assert!(matches!(
            valid_name(&"k".repeat(65)),
            Err(KeyError::TooLong { .. })
        ));
        // The Kelvin sign folds to 'k' only under Unicode rules: it is not a key character.
        assert!(matches!(
            valid_name("\u{212A}"),
            Err(KeyError::Character {
                character: '\u{212A}',
                ..
            })
        ));
    }

    #[test]
    fn errors_quote_the_name_safely() {
        let err = valid_name("\u{1b}[31m\u{202e}x").unwrap_err();
        let text = err.to_string();
        assert!(
            !text.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{text}"
        );
        assert!(text.contains(r#""\u{1b}[31m\u{202e}x""#), "{text}");
        assert!(text.contains(r"'\u{1b}' (U+001B)"), "{text}");
        let long = valid_name(&"é".repeat(10_000)).unwrap_err().to_string();
        assert!(long.len() < 400, "{}", long.len());
    }

    #[test]
    #[should_panic(expected = "cannot be a built-in key")]
    fn constants_cannot_be_built_in_keys() {
        let name = std::hint::black_box("action");
        // A `&'static str` that is not a literal: checked at run time, so this panics.
        let _ = AdditionalKey::any(name);
    }
}
