//! Action names and their human-readable forms.
//!
//! Actions are an open set of snake_case names: an event's `action` is a `String`, and an
//! application may use any name it likes. The common ones (Coder's, and those of Coder's
//! earlier "classic" product: `auto_start`, `cordon`, `ssh`, …) are constants here so that
//! typos are compile errors.
//!
//! [`past_tense`] and [`verb`] give the words used in sentences, and [`describe`] builds a
//! one-line description of an event in the style of Coder's audit page:
//!
//! ```
//! use audit_core::action;
//!
//! assert_eq!(action::past_tense(action::WRITE), "updated");
//! assert_eq!(action::past_tense("archive"), "archived"); // unknown: a sensible fallback
//! assert_eq!(
//!     action::describe("alice", action::WRITE, "workspace", "dev", 200),
//!     "alice updated workspace dev",
//! );
//! assert_eq!(
//!     action::describe("alice", action::WRITE, "workspace", "dev", 403),
//!     "alice unsuccessfully attempted to update workspace dev",
//! );
//! ```

use std::borrow::Cow;

/// A resource was created.
pub const CREATE: &str = "create";
/// A resource was changed.
pub const WRITE: &str = "write";
/// A resource was deleted.
pub const DELETE: &str = "delete";
/// A resource (a workspace, a VM, …) was started.
pub const START: &str = "start";
/// A resource was stopped.
pub const STOP: &str = "stop";
/// A resource was restarted.
pub const RESTART: &str = "restart";
/// A user logged in.
pub const LOGIN: &str = "login";
/// A user logged out.
pub const LOGOUT: &str = "logout";
/// A user registered.
pub const REGISTER: &str = "register";
/// A user asked for a password reset.
pub const REQUEST_PASSWORD_RESET: &str = "request_password_reset";
/// A user connected to a resource (IDE, SSH, CLI).
pub const CONNECT: &str = "connect";
/// A user disconnected from a resource.
pub const DISCONNECT: &str = "disconnect";
/// A user opened a resource (e.g. a web IDE).
pub const OPEN: &str = "open";
/// A user closed a resource.
pub const CLOSE: &str = "close";
/// The system turned a resource off automatically (e.g. after inactivity).
pub const AUTO_OFF: &str = "auto_off";
/// The system started a resource automatically (e.g. on its owner's schedule).
pub const AUTO_START: &str = "auto_start";
/// A provider became unavailable for new resources.
pub const CORDON: &str = "cordon";
/// A provider became available for new resources again.
pub const UNCORDON: &str = "uncordon";
/// A job was added to a queue.
pub const ENQUEUE: &str = "enqueue";
/// A user opened a terminal on a resource.
pub const SSH: &str = "ssh";
/// A user (or a tool) read a resource, e.g. a secret.
pub const VIEW: &str = "view";
/// A user read a resource.
pub const READ: &str = "read";

/// Every action with a constant in this module.
pub const KNOWN: &[&str] = &[
    CREATE,
    WRITE,
    DELETE,
    START,
    STOP,
    RESTART,
    LOGIN,
    LOGOUT,
    REGISTER,
    REQUEST_PASSWORD_RESET,
    CONNECT,
    DISCONNECT,
    OPEN,
    CLOSE,
    AUTO_OFF,
    AUTO_START,
    CORDON,
    UNCORDON,
    ENQUEUE,
    SSH,
    VIEW,
    READ,
];

/// `(action, verb, past tense, takes an object)`. An action without an object is about the
/// actor themselves ("alice logged in"), so the resource is not named in descriptions.
const WORDS: &[(&str, &str, &str, bool)] = &[
    (CREATE, "create", "created", true),
    (WRITE, "update", "updated", true),
    (DELETE, "delete", "deleted", true),
    (START, "start", "started", true),
    (STOP, "stop", "stopped", true),
    (RESTART, "restart", "restarted", true),
    (LOGIN, "log in", "logged in", false),
    (LOGOUT, "log out", "logged out", false),
    (REGISTER, "register", "registered", false),
    (
        REQUEST_PASSWORD_RESET,
        "request a password reset for",
        "requested a password reset for",
        true,
    ),
    (CONNECT, "connect to", "connected to", true),
    (DISCONNECT, "disconnect from", "disconnected from", true),
    (OPEN, "open", "opened", true),
    (CLOSE, "close", "closed", true),
    (
        AUTO_OFF,
        "automatically stop",
        "automatically stopped",
        true,
    ),
    (
        AUTO_START,
        "automatically start",
        "automatically started",
        true,
    ),
    (CORDON, "cordon", "cordoned", true),
    (UNCORDON, "uncordon", "uncordoned", true),
    (ENQUEUE, "enqueue", "enqueued", true),
    (SSH, "open a terminal on", "opened a terminal on", true),
    (VIEW, "view", "viewed", true),
    (READ, "read", "read", true),
];

fn words(action: &str) -> Option<&'static (&'static str, &'static str, &'static str, bool)> {
    WORDS.iter().find(|w| w.0 == action)
}

/// The verb of an action, as in "attempted to *update*": `write` → `update`, `login` →
/// `log in`. An unknown action gives its name with `_` replaced by spaces.
///
/// ```
/// assert_eq!(audit_core::action::verb("login"), "log in");
/// assert_eq!(audit_core::action::verb("rotate_key"), "rotate key");
/// ```
pub fn verb(action: &str) -> Cow<'static, str> {
    match words(action) {
        Some(w) => Cow::Borrowed(w.1),
        None => Cow::Owned(action.replace('_', " ")),
    }
}

/// The past tense of an action, as in "alice *updated* workspace dev": `write` → `updated`,
/// `login` → `logged in`, `stop` → `stopped`.
///
/// An unknown action gets a regular English ending on its first word, the verb, and `_` become
/// spaces (`archive` → `archived`, `rotate_key` → `rotated key`). Irregular verbs come out
/// regular (`transfer` → `transfered`): add a constant here or describe such events yourself.
///
/// ```
/// use audit_core::action::past_tense;
/// assert_eq!(past_tense("login"), "logged in");
/// assert_eq!(past_tense("rotate_key"), "rotated key");
/// assert_eq!(past_tense("export"), "exported");
/// assert_eq!(past_tense("copy"), "copied");
/// ```
pub fn past_tense(action: &str) -> Cow<'static, str> {
    if let Some(w) = words(action) {
        return Cow::Borrowed(w.2);
    }
    let (first, rest) = match action.split_once('_') {
        Some((first, rest)) => (first, Some(rest)),
        None => (action, None),
    };
    if first.is_empty() {
        return Cow::Owned(format!("performed {}", verb(action).trim()));
    }
    let mut out = regular_past(first);
    if let Some(rest) = rest {
        out.push(' ');
        out.push_str(&rest.replace('_', " "));
    }
    Cow::Owned(out)
}

fn regular_past(word: &str) -> String {
    let vowel = |c: char| "aeiou".contains(c);
    if word.ends_with("ed") {
        word.to_owned()
    } else if word.ends_with('e') {
        format!("{word}d")
    } else if let Some(stem) = word.strip_suffix('y')
        && stem.chars().last().is_some_and(|c| !vowel(c))
    {
        format!("{stem}ied")
    } else {
        format!("{word}ed")
    }
}

/// Whether descriptions of this action name the resource ("alice updated workspace dev") or
/// only the actor ("alice logged in"). Unknown actions name the resource.
pub fn takes_object(action: &str) -> bool {
    words(action).is_none_or(|w| w.3)
}

/// A one-line description of an event, in the style of Coder's audit page.
///
/// * success (`status_code < 400`): `"{username} {past tense} {resource type} {target}"`,
/// * failure: `"{username} unsuccessfully attempted to {verb} {resource type} {target}"`.
///
/// The resource type is shown with `_` as spaces (`workspace_build` → `workspace build`); an
/// empty target or username is left out (`"someone"` stands in for an empty username), and
/// actions about the actor themselves (`login`, `logout`, `register`) name no resource.
///
/// The sentence is one line, safe to print: every control, line-separator, bidirectional or
/// invisible character of the names is escaped visibly
/// ([`terminal_safe`](crate::format::terminal_safe)).
///
/// ```
/// use audit_core::action::{describe, LOGIN, START};
/// assert_eq!(describe("bob", LOGIN, "api_key", "", 200), "bob logged in");
/// assert_eq!(describe("bob", LOGIN, "api_key", "", 401), "bob unsuccessfully attempted to log in");
/// assert_eq!(describe("", START, "workspace_build", "", 200), "someone started workspace build");
/// assert_eq!(describe("bob", START, "vm", "a\u{2028}b", 200), r"bob started vm a\u2028b");
/// ```
pub fn describe(
    username: &str,
    action: &str,
    resource_type: &str,
    target: &str,
    status_code: u16,
) -> String {
    let who = if username.is_empty() {
        "someone"
    } else {
        username
    };
    let mut out = if status_code >= 400 {
        format!("{who} unsuccessfully attempted to {}", verb(action))
    } else {
        format!("{who} {}", past_tense(action))
    };
    if takes_object(action) {
        if !resource_type.is_empty() {
            out.push(' ');
            out.extend(
                resource_type
                    .chars()
                    .map(|c| if c == '_' { ' ' } else { c }),
            );
        }
        if !target.is_empty() {
            out.push(' ');
            out.push_str(target);
        }
    }
    match crate::format::terminal_safe(&out) {
        std::borrow::Cow::Borrowed(_) => out,
        std::borrow::Cow::Owned(safe) => safe,
    }
}

/// Whether `name` is a valid action name: non-empty lowercase ASCII letters, digits and `_`,
/// starting with a letter.
///
/// ```
/// assert!(audit_core::action::is_valid("auto_start"));
/// assert!(!audit_core::action::is_valid("Auto Start"));
/// ```
pub fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_action_has_words_and_is_valid() {
        for a in KNOWN {
            assert!(words(a).is_some(), "{a} has no words");
            assert!(is_valid(a), "{a}");
        }
        assert_eq!(KNOWN.len(), WORDS.len());
    }

    #[test]
    fn past_tenses() {
        let cases = [
            (CREATE, "created"),
            (WRITE, "updated"),
            (DELETE, "deleted"),
            (START, "started"),
            (STOP, "stopped"),
            (LOGIN, "logged in"),
            (LOGOUT, "logged out"),
            (REGISTER, "registered"),
            (CONNECT, "connected to"),
            (AUTO_START, "automatically started"),
            (AUTO_OFF, "automatically stopped"),
            ("archive", "archived"),
            ("deploy", "deployed"),
            ("apply", "applied"),
            ("transfer_ownership", "transfered ownership"),
            ("", "performed "),
        ];
        for (action, want) in cases {
            assert_eq!(past_tense(action).trim_end(), want.trim_end(), "{action:?}");
        }
    }

    #[test]
    fn descriptions() {
        assert_eq!(
            describe("alice", WRITE, "workspace", "dev", 200),
            "alice updated workspace dev"
        );
        assert_eq!(
            describe("alice", DELETE, "template", "", 500),
            "alice unsuccessfully attempted to delete template"
        );
        assert_eq!(
            describe("autostart", AUTO_START, "workspace_build", "dev", 200),
            "autostart automatically started workspace build dev"
        );
        assert_eq!(
            describe("alice", "rotate_key", "api_key", "k1", 400),
            "alice unsuccessfully attempted to rotate key api key k1"
        );
        assert_eq!(
            describe("alice", LOGOUT, "api_key", "x", 200),
            "alice logged out"
        );
    }

    #[test]
    fn descriptions_are_one_safe_line_whatever_the_names_hold() {
        let nasty = "x\ny\r\u{1b}[31m\u{2028}\u{202e}\u{200b}\u{85}";
        let d = describe(nasty, "rotate_key", nasty, nasty, 200);
        assert_eq!(d.lines().count(), 1, "{d}");
        assert!(!d.chars().any(crate::format::is_unsafe), "{d:?}");
        assert!(
            d.starts_with(r"x\ny\r\u001b[31m\u2028\u202e\u200b\u0085 rotated key "),
            "{d}"
        );
    }
}
