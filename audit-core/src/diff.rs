//! What changed between two snapshots of an [`Auditable`](crate::Auditable) value: [`Diff`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Auditable;

/// Compares two snapshots of a resource.
///
/// * create: `diff(None, Some(&new))` — every tracked field with its `new` value,
/// * write: `diff(Some(&old), Some(&new))` — only the fields that changed,
/// * delete: `diff(Some(&old), None)` — every tracked field with its `old` value.
///
/// Secret fields appear as `{"secret": true}` (on write only if they changed); ignored fields
/// never appear.
///
/// ```
/// use audit_core::Auditable;
///
/// #[derive(Auditable, Clone)]
/// struct User {
///     #[audit(track, id)] id: u64,
///     #[audit(track)] email: String,
///     #[audit(secret)] password_hash: String,
///     #[audit(ignore, reason = "bumped on every request")] last_seen_at: u64,
/// }
///
/// let old = User { id: 7, email: "a@example.com".into(), password_hash: "h1".into(), last_seen_at: 1 };
/// let mut new = old.clone();
/// new.email = "b@example.com".into();
/// new.password_hash = "h2".into();
/// new.last_seen_at = 2;
///
/// let d = audit_core::diff(Some(&old), Some(&new));
/// assert_eq!(
///     serde_json::to_string(&d).unwrap(),
///     r#"{"email":{"old":"a@example.com","new":"b@example.com","secret":false},"password_hash":{"secret":true}}"#
/// );
/// assert!(audit_core::diff(Some(&old), Some(&old)).is_empty());
/// ```
pub fn diff<T: Auditable>(old: Option<&T>, new: Option<&T>) -> Diff {
    diff_with(old, new, Fingerprinter::NONE)
}

/// [`diff`], with secret changes fingerprinted with `key` (fields marked `no_fingerprint`
/// excepted): `{"secret": true, "fingerprint": {"old": "hmac-sha256:k1:…", "new": "…"}}`.
///
/// ```
/// use audit_core::Auditable;
/// use audit_core::fingerprint::FingerprintKey;
///
/// #[derive(Auditable, Clone)]
/// struct Workspace {
///     #[audit(track, id)] id: u64,
///     #[audit(secret)] agent_token: String,
///     #[audit(secret, no_fingerprint)] pin: u16,
/// }
///
/// let key = FingerprintKey::new("k1", &[7; 32]).unwrap();
/// let old = Workspace { id: 1, agent_token: "t1".into(), pin: 1234 };
/// let new = Workspace { id: 1, agent_token: "t2".into(), pin: 4321 };
/// let d = audit_core::diff_fingerprinted(Some(&old), Some(&new), &key);
/// let json = serde_json::to_value(&d).unwrap();
/// assert_eq!(
///     json["agent_token"]["fingerprint"]["new"],
///     key.fingerprint("workspace", "agent_token", "t2").unwrap().to_string()
/// );
/// assert_eq!(json["pin"], serde_json::json!({"secret": true}));
/// assert!(!json.to_string().contains("t2"));
/// ```
#[cfg(feature = "fingerprint")]
pub fn diff_fingerprinted<T: Auditable>(
    old: Option<&T>,
    new: Option<&T>,
    key: &crate::fingerprint::FingerprintKey,
) -> Diff {
    diff_with(old, new, Fingerprinter::with(key))
}

/// [`diff`], fingerprinting secret changes with what `fingerprinter` holds (nothing, or a key).
pub(crate) fn diff_with<T: Auditable>(
    old: Option<&T>,
    new: Option<&T>,
    fingerprinter: Fingerprinter<'_>,
) -> Diff {
    // The generated comparison takes two snapshots; on create and delete it is given the one
    // snapshot twice and the builder records only the side that exists.
    let (old, new, sides) = match (old, new) {
        (Some(old), Some(new)) => (old, new, Sides::Both),
        (None, Some(new)) => (new, new, Sides::NewOnly),
        (Some(old), None) => (old, old, Sides::OldOnly),
        (None, None) => return Diff::default(),
    };
    let mut out = DiffBuilder::new(sides, fingerprinter, T::schema().resource_type);
    T::__audit_diff(old, new, &mut out);
    out.finish()
}

/// What fingerprints secret values while diffing: a key, or nothing (always nothing without
/// the feature `fingerprint`).
#[derive(Clone, Copy, Default)]
pub(crate) struct Fingerprinter<'k> {
    #[cfg(feature = "fingerprint")]
    key: Option<&'k crate::fingerprint::FingerprintKey>,
    _key: std::marker::PhantomData<&'k ()>,
}

impl<'k> Fingerprinter<'k> {
    /// No fingerprints.
    pub(crate) const NONE: Fingerprinter<'static> = Fingerprinter {
        #[cfg(feature = "fingerprint")]
        key: None,
        _key: std::marker::PhantomData,
    };

    /// Fingerprints with `key`.
    #[cfg(feature = "fingerprint")]
    pub(crate) fn with(key: &'k crate::fingerprint::FingerprintKey) -> Self {
        Fingerprinter {
            key: Some(key),
            _key: std::marker::PhantomData,
        }
    }

    /// The fingerprints of a secret field's sides, or `None` without a key (or if a value has
    /// no JSON form: the change is then recorded without fingerprints).
    #[cfg_attr(not(feature = "fingerprint"), allow(unused_variables))]
    fn fingerprint<T: Serialize + ?Sized>(
        &self,
        resource_type: &str,
        field: &str,
        old: Option<&T>,
        new: Option<&T>,
    ) -> Option<Change> {
        #[cfg(feature = "fingerprint")]
        {
            let key = self.key?;
            let side = |v: Option<&T>| match v {
                None => Some(None),
                Some(v) => key
                    .fingerprint(resource_type, field, v)
                    .ok()
                    .map(|f| Some(f.to_string())),
            };
            Some(Change::FingerprintedSecret {
                old: side(old)?,
                new: side(new)?,
            })
        }
        #[cfg(not(feature = "fingerprint"))]
        None
    }
}

/// The change of one field.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A tracked field. A side that does not exist (old on create, new on delete) is `None`;
    /// a value that is `None` in Rust is `Some(Value::Null)`.
    Tracked {
        /// The value before, if there was a before.
        old: Option<Value>,
        /// The value after, if there is an after.
        new: Option<Value>,
    },
    /// A secret field changed (or was set on create, or removed on delete). No value is kept.
    Secret,
    /// A secret field changed, with keyed fingerprints of its values (an auditor with a
    /// fingerprint key, see [`crate::fingerprint`]): `hmac-sha256:<key id>:…` texts, which
    /// answer "was it set to X?" for whoever holds the key, and nothing for anyone else. A
    /// side that does not exist (old on create, new on delete) is `None`.
    FingerprintedSecret {
        /// The fingerprint of the value before.
        old: Option<String>,
        /// The fingerprint of the value after.
        new: Option<String>,
    },
    /// A tracked field changed but its value could not be serialized to JSON; `error` says why.
    /// The change is recorded rather than lost.
    Unserializable {
        /// The serializer's error message (it never contains the value).
        error: String,
    },
}

impl Change {
    /// Whether this is a secret field's change.
    pub fn is_secret(&self) -> bool {
        matches!(self, Change::Secret | Change::FingerprintedSecret { .. })
    }
}

/// The changed fields of a resource, sorted by audit name.
///
/// Serializes to a JSON object, one key per changed field:
/// `{"old": …, "new": …, "secret": false}` for tracked fields, `{"secret": true}` for secret
/// ones, `{"secret": true, "fingerprint": {"old": "hmac-sha256:…", "new": "…"}}` for
/// fingerprinted secret ones. Deserializing gives the same diff back (for events read from a
/// store), and refuses anything else: a change that mixes the forms, or has keys of its own.
///
/// What changed between two snapshots of an [`Auditable`] value.
///
/// [`diff`] compares field by field with `PartialEq`, in code generated by the derive. Only a
/// tracked field that changed has its values serialized; a secret field that changed is
/// recorded as `{"secret": true}` and its values are never read beyond `==`. With a
/// fingerprint key (`diff_fingerprinted`, feature `fingerprint`; or an auditor with
/// `AuditorBuilder::fingerprint_key`), a secret field that changed also carries keyed
/// fingerprints of its values (see [`crate::fingerprint`]), unless it is
/// `#[audit(secret, no_fingerprint)]`. Comparing two equal snapshots allocates nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diff {
    entries: Vec<(Cow<'static, str>, Change)>,
}

impl Diff {
    /// No field changed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of changed fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The changes, sorted by field name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Change)> + '_ {
        self.entries
            .iter()
            .map(|(name, change)| (name.as_ref(), change))
    }

    /// The change of the field with this audit name, if it changed.
    pub fn get(&self, name: &str) -> Option<&Change> {
        self.entries
            .binary_search_by(|(n, _)| n.as_ref().cmp(name))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// Whether the field with this audit name changed.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Which snapshots a [`DiffBuilder`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sides {
    /// A write: both snapshots exist; a field is recorded when they differ.
    Both,
    /// A create: only the new snapshot exists (passed as both sides); every field is recorded
    /// with its new value.
    NewOnly,
    /// A delete: only the old snapshot exists (passed as both sides); every field is recorded
    /// with its old value.
    OldOnly,
}

/// A secret field's type that can be fingerprinted: any `serde::Serialize` type, through its
/// serde encoding. A bound of its own so that a secret field whose type is not `Serialize` is
/// told how to fix it: derive `Serialize`, or opt the field out with `no_fingerprint`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "the secret field's type `{Self}` cannot be fingerprinted: it does not implement `serde::Serialize`",
    label = "secret fields are fingerprinted through their serde encoding",
    note = "derive or implement `serde::Serialize` for `{Self}`, or mark the field `#[audit(secret, no_fingerprint)]` (it is then only compared, never read)"
)]
pub trait Fingerprintable: Serialize {}

impl<T: Serialize + ?Sized> Fingerprintable for T {}

/// Collects field changes; used by the code `#[derive(Auditable)]` generates.
///
/// The generated `__audit_diff` calls [`tracked`](Self::tracked) or [`secret`](Self::secret)
/// once per field with the field of each snapshot: plain references, no closures, so that
/// the derive stays cheap to compile.
#[doc(hidden)]
pub struct DiffBuilder<'k> {
    entries: Vec<(Cow<'static, str>, Change)>,
    sides: Sides,
    fingerprinter: Fingerprinter<'k>,
    /// The resource type whose fields are compared (a flattened struct's fields count as the
    /// outer resource's): part of every fingerprint.
    resource_type: &'static str,
}

impl<'k> DiffBuilder<'k> {
    fn new(sides: Sides, fingerprinter: Fingerprinter<'k>, resource_type: &'static str) -> Self {
        DiffBuilder {
            entries: Vec::new(),
            sides,
            fingerprinter,
            resource_type,
        }
    }

    /// Records a tracked field if its value changed (or a side is missing).
    #[inline]
    pub fn tracked<T: PartialEq + Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        old: &T,
        new: &T,
    ) {
        if let Some((old, new)) = self.changed(old, new) {
            self.push_tracked(name, old, new);
        }
    }

    /// The sides of a field to record, or `None` when a write left it as it was.
    #[inline]
    fn changed<'v, T: PartialEq + ?Sized>(
        &self,
        old: &'v T,
        new: &'v T,
    ) -> Option<(Option<&'v T>, Option<&'v T>)> {
        match self.sides {
            Sides::Both if old == new => None,
            Sides::Both => Some((Some(old), Some(new))),
            Sides::NewOnly => Some((None, Some(new))),
            Sides::OldOnly => Some((Some(old), None)),
        }
    }

    #[cold]
    fn push_tracked<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        old: Option<&T>,
        new: Option<&T>,
    ) {
        let side = |v: Option<&T>| v.map(serde_json::to_value).transpose();
        let change = match (side(old), side(new)) {
            (Ok(old), Ok(new)) => Change::Tracked { old, new },
            (Err(e), _) | (_, Err(e)) => Change::Unserializable {
                error: e.to_string(),
            },
        };
        self.entries.push((Cow::Borrowed(name), change));
    }

    /// Records a secret field if its value changed (or a side is missing). Its values are read
    /// beyond `==` only to fingerprint them, when the diff has a fingerprint key.
    #[inline]
    pub fn secret<T: PartialEq + Fingerprintable + ?Sized>(
        &mut self,
        name: &'static str,
        old: &T,
        new: &T,
    ) {
        if let Some((old, new)) = self.changed(old, new) {
            self.push_secret(name, old, new);
        }
    }

    #[cold]
    fn push_secret<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        old: Option<&T>,
        new: Option<&T>,
    ) {
        let change = self
            .fingerprinter
            .fingerprint(self.resource_type, name, old, new)
            .unwrap_or(Change::Secret);
        self.entries.push((Cow::Borrowed(name), change));
    }

    /// Records a secret field that is never fingerprinted (`#[audit(secret, no_fingerprint)]`)
    /// if its value changed (or a side is missing); never reads the value beyond `==`.
    #[inline]
    pub fn secret_unfingerprinted<T: PartialEq + ?Sized>(
        &mut self,
        name: &'static str,
        old: &T,
        new: &T,
    ) {
        if self.changed(old, new).is_some() {
            self.entries.push((Cow::Borrowed(name), Change::Secret));
        }
    }

    fn finish(mut self) -> Diff {
        self.entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Diff {
            entries: self.entries,
        }
    }
}

impl Serialize for Change {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Change::Tracked { old, new } => {
                let len = 1 + usize::from(old.is_some()) + usize::from(new.is_some());
                let mut map = serializer.serialize_map(Some(len))?;
                if let Some(old) = old {
                    map.serialize_entry("old", old)?;
                }
                if let Some(new) = new {
                    map.serialize_entry("new", new)?;
                }
                map.serialize_entry("secret", &false)?;
                map.end()
            }
            Change::Secret => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("secret", &true)?;
                map.end()
            }
            Change::FingerprintedSecret { old, new } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("secret", &true)?;
                map.serialize_entry(
                    "fingerprint",
                    &Fingerprints {
                        old: old.as_deref(),
                        new: new.as_deref(),
                    },
                )?;
                map.end()
            }
            Change::Unserializable { error } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("secret", &false)?;
                map.serialize_entry("error", error)?;
                map.end()
            }
        }
    }
}

/// The `fingerprint` object of a fingerprinted secret change.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fingerprints<T> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    old: Option<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    new: Option<T>,
}

impl Serialize for Diff {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (name, change) in &self.entries {
            map.serialize_entry(name, change)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChangeVisitor;
        impl<'de> Visitor<'de> for ChangeVisitor {
            type Value = Change;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a field change such as {"old": 1, "new": 2, "secret": false}"#)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Change, A::Error> {
                let (mut old, mut new, mut secret, mut error, mut fingerprint) =
                    (None, None, None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let duplicate = match key.as_str() {
                        "old" => old.replace(map.next_value::<Value>()?).is_some(),
                        "new" => new.replace(map.next_value::<Value>()?).is_some(),
                        "secret" => secret.replace(map.next_value::<bool>()?).is_some(),
                        "error" => error.replace(map.next_value::<String>()?).is_some(),
                        "fingerprint" => fingerprint
                            .replace(map.next_value::<Fingerprints<String>>()?)
                            .is_some(),
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["old", "new", "secret", "error", "fingerprint"],
                            ));
                        }
                    };
                    if duplicate {
                        return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
                    }
                }
                let mixed = |what| de::Error::custom(format_args!("a field change {what}"));
                match (secret, error, fingerprint) {
                    (None, _, _) => Err(de::Error::missing_field("secret")),
                    (Some(true), None, None) if old.is_none() && new.is_none() => {
                        Ok(Change::Secret)
                    }
                    (Some(true), None, Some(f)) if old.is_none() && new.is_none() => {
                        if f.old.is_none() && f.new.is_none() {
                            return Err(mixed("has an empty fingerprint"));
                        }
                        Ok(Change::FingerprintedSecret {
                            old: f.old,
                            new: f.new,
                        })
                    }
                    (Some(true), _, _) => Err(mixed("that is secret holds values or an error")),
                    (Some(false), _, Some(_)) => Err(mixed("that is not secret has a fingerprint")),
                    (Some(false), Some(error), None) if old.is_none() && new.is_none() => {
                        Ok(Change::Unserializable { error })
                    }
                    (Some(false), Some(_), None) => Err(mixed("has both values and an error")),
                    (Some(false), None, None) => Ok(Change::Tracked { old, new }),
                }
            }
        }
        deserializer.deserialize_map(ChangeVisitor)
    }
}

impl<'de> Deserialize<'de> for Diff {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, Change>::deserialize(deserializer)?;
        Ok(Diff {
            entries: map.into_iter().map(|(n, c)| (Cow::Owned(n), c)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn build(sides: Sides, f: impl FnOnce(&mut DiffBuilder)) -> Diff {
        let mut b = DiffBuilder::new(sides, Fingerprinter::NONE, "test");
        f(&mut b);
        b.finish()
    }

    #[test]
    fn a_write_records_only_what_changed() {
        let d = build(Sides::Both, |b| {
            b.tracked("ttl", &None::<i64>, &Some(5));
            b.secret("token", "s3cr3t", "other");
            b.tracked("same", &1, &1);
            b.secret("same_secret", &1, &1);
        });
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({
                "token": {"secret": true},
                "ttl": {"old": null, "new": 5, "secret": false},
            })
        );
        assert_eq!(d.len(), 2);
        assert!(d.contains("token") && !d.contains("same"));
    }

    #[test]
    fn sides_that_do_not_exist_are_omitted_and_none_is_null() {
        let created = build(Sides::NewOnly, |b| {
            b.tracked("ttl", &None::<i64>, &None::<i64>);
            b.secret("token", "s3cr3t", "s3cr3t");
        });
        assert_eq!(
            serde_json::to_value(&created).unwrap(),
            json!({"token": {"secret": true}, "ttl": {"new": null, "secret": false}})
        );
        let deleted = build(Sides::OldOnly, |b| b.tracked("name", "a", "a"));
        assert_eq!(
            serde_json::to_value(&deleted).unwrap(),
            json!({"name": {"old": "a", "secret": false}})
        );
    }

    #[test]
    fn keys_are_sorted_whatever_the_declaration_order() {
        let d = build(Sides::Both, |b| {
            b.tracked("zeta", &1, &2);
            b.tracked("alpha", &1, &2);
        });
        let names: Vec<_> = d.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["alpha", "zeta"]);
        assert_eq!(serde_json::to_string(&d).unwrap().find("alpha"), Some(2));
    }

    #[test]
    fn unserializable_values_are_recorded_not_lost() {
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), 3);
        let d = build(Sides::NewOnly, |b| b.tracked("map", &bad, &bad));
        match d.get("map") {
            Some(Change::Unserializable { error }) => {
                assert!(error.contains("key must be a string"))
            }
            other => panic!("expected an unserializable change, got {other:?}"),
        }
    }

    #[test]
    fn fingerprinted_secrets_round_trip_and_mixed_forms_are_refused() {
        let text = r#"{"key":{"secret":true,"fingerprint":{"old":"hmac-sha256:k1:a","new":"hmac-sha256:k1:b"}},"pin":{"secret":true,"fingerprint":{"new":"hmac-sha256:k1:c"}}}"#;
        let d: Diff = serde_json::from_str(text).unwrap();
        assert_eq!(
            d.get("pin"),
            Some(&Change::FingerprintedSecret {
                old: None,
                new: Some("hmac-sha256:k1:c".into())
            })
        );
        assert!(d.get("key").unwrap().is_secret());
        assert_eq!(serde_json::to_string(&d).unwrap(), text);
        for bad in [
            r#"{"secret":true,"old":1}"#,
            r#"{"secret":true,"error":"e"}"#,
            r#"{"secret":true,"fingerprint":{}}"#,
            r#"{"secret":true,"fingerprint":{"old":"a","other":"b"}}"#,
            r#"{"secret":false,"fingerprint":{"new":"x"}}"#,
            r#"{"secret":false,"error":"e","old":1}"#,
            r#"{"old":1,"new":2}"#,
            r#"{"secret":false,"old":1,"old":2}"#,
            r#"{"secret":false,"value":1}"#,
        ] {
            assert!(serde_json::from_str::<Change>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn diff_round_trips_through_json() {
        let d = build(Sides::Both, |b| {
            b.tracked("ttl", &None::<i64>, &Some(5));
            b.secret("token", "a", "b");
            b.tracked("name", "a", "b");
        });
        let text = serde_json::to_string(&d).unwrap();
        let back: Diff = serde_json::from_str(&text).unwrap();
        assert_eq!(back, d);
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }
}
