//! The canonical encoding of a value: the JSON data model as one fixed byte string.
//!
//! Two values that are the same JSON value encode to the same bytes, and two different JSON
//! values never do. "The same JSON value" means: the same structure, the same strings, object
//! keys compared as a set (their order does not matter), and numbers compared by their decimal
//! value (`1`, `1.0`, `10e-1` and `1.00` are one number). So a value reads back with the same
//! bytes from SQLite (JSON text as written) and from Postgres (`jsonb`, which reorders keys
//! and normalises numbers).
//!
//! # Grammar
//!
//! ```text
//! value  = null | false | true | number | string | array | object
//! null   = 'n'        false = 'f'        true = 't'
//! number = '0'                                  zero (0, -0, 0.0, …)
//!        | ('+' | '-') exponent length digits   the value is ±0.DIGITS × 10^exponent
//! string = 's' length utf-8
//! array  = '[' value* ']'
//! object = '{' (key value)* '}'                 keys in byte order
//! key    = 'k' length utf-8
//! exponent: i64, big-endian   length: u64 byte count, big-endian
//! digits: ASCII decimal digits, the first and the last not `0`
//! ```
//!
//! Every value starts with a tag byte and every variable-length part carries its length, so
//! the encoding is unambiguous: it can be parsed back, hence different values never collide.
//!
//! # Rust values
//!
//! Any `T: Serialize` encodes as [`serde_json::to_value`] would see it: `bool`; every integer
//! and float as a number (a float by the shortest decimal that reads back as the same float,
//! as `serde_json` writes it; NaN and infinities as `null`); `char` and `str` as strings;
//! bytes as an array of numbers; `None`, `()` and unit structs as `null`; `Some(v)` and
//! newtype structs as `v`; sequences and tuples as arrays; maps and structs as objects (map
//! keys that are strings, chars, integers, bools or unit variants); enum variants externally
//! tagged (`"Variant"` or `{"Variant": …}`). A struct encodes exactly as the JSON object it
//! serializes to, which is how `audit fingerprint --json` can fingerprint a typed secret from
//! its JSON text.
//!
//! # Secrets
//!
//! The encoder streams into any [`Sink`] (an HMAC state, for fingerprints). Strings and
//! numbers go straight through; only the entries of a map are buffered (to sort them), in a
//! buffer that is wiped when dropped and wiped before it grows. Error messages never carry a
//! value: a `Serialize` implementation's own error message is dropped, since it may quote one.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde::ser;
use serde_json::Value;
use zeroize::Zeroize;

mod serializer;

use serializer::Encoder;

/// Where encoded bytes go.
pub trait Sink {
    /// Whether the bytes may be secret, so that buffers on their way must be wiped.
    const SECRET: bool = true;

    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

/// A `Vec` holds what it is given, so wiping the buffers on the way would protect nothing.
impl Sink for Vec<u8> {
    const SECRET: bool = false;

    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    const SECRET: bool = S::SECRET;

    fn put(&mut self, bytes: &[u8]) {
        (**self).put(bytes);
    }
}

/// Why a value could not be encoded. Never quotes the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A map key that is not a string, a char, an integer, a bool or a unit variant.
    KeyMustBeString,
    /// The value's `Serialize` implementation failed (its message is not kept: it may
    /// quote the value).
    Serialize,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::KeyMustBeString => f.write_str(
                "a map key is not a string, char, integer, bool or unit variant, so the value has no JSON form",
            ),
            EncodeError::Serialize => {
                f.write_str("the value's Serialize implementation reported an error")
            }
        }
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        EncodeError::Serialize
    }
}

/// Encodes any serializable value into `sink`.
///
/// ```
/// use audit_core::canonical::value::encode;
///
/// let mut a = Vec::new();
/// encode(&serde_json::json!({"b": 1.0, "a": [true, null]}), &mut a).unwrap();
/// let mut b = Vec::new();
/// encode(&serde_json::json!({"a": [true, null], "b": 1}), &mut b).unwrap();
/// assert_eq!(a, b); // key order and number form do not matter
///
/// let mut c = Vec::new();
/// encode(&serde_json::json!({"a": [true, null], "b": 2}), &mut c).unwrap();
/// assert_ne!(a, c);
/// ```
pub fn encode<T: Serialize + ?Sized, S: Sink>(value: &T, sink: S) -> Result<(), EncodeError> {
    value.serialize(&mut Encoder { sink })
}

/// Encodes a JSON value (a [`Value`] or a JSON object's map) into `out`. A JSON value always
/// has an encoding.
pub fn encode_json<J: Json + ?Sized>(value: &J, out: &mut Vec<u8>) {
    if encode(value, &mut *out).is_err() {
        // Unreachable: JSON object keys are strings and JSON values never fail to serialize.
        // Should it ever happen, a tag no value starts with keeps the bytes unambiguous.
        out.push(b'!');
    }
}

/// A JSON value: one that always has an encoding.
pub trait Json: Serialize + private::Sealed {}
impl Json for Value {}
impl Json for serde_json::Map<String, Value> {}

mod private {
    pub trait Sealed {}
    impl Sealed for serde_json::Value {}
    impl Sealed for serde_json::Map<String, serde_json::Value> {}
}

mod tag {
    pub(super) const NULL: u8 = b'n';
    pub(super) const FALSE: u8 = b'f';
    pub(super) const TRUE: u8 = b't';
    pub(super) const ZERO: u8 = b'0';
    pub(super) const POSITIVE: u8 = b'+';
    pub(super) const NEGATIVE: u8 = b'-';
    pub(super) const STRING: u8 = b's';
    pub(super) const ARRAY_START: u8 = b'[';
    pub(super) const ARRAY_END: u8 = b']';
    pub(super) const OBJECT_START: u8 = b'{';
    pub(super) const OBJECT_END: u8 = b'}';
    pub(super) const KEY: u8 = b'k';
}

fn put_len(sink: &mut impl Sink, len: usize) {
    sink.put(&(len as u64).to_be_bytes());
}

fn put_str(sink: &mut impl Sink, tag: u8, s: &str) {
    sink.put(&[tag]);
    put_len(sink, s.len());
    sink.put(s.as_bytes());
}

/// Text formatted on the stack, wiped when dropped (a secret number passes through it).
struct StackText {
    buf: [u8; 64],
    len: usize,
}

impl StackText {
    fn new() -> Self {
        StackText {
            buf: [0; 64],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl Drop for StackText {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

/// Writes the number whose decimal text is `text` (`-?digits(.digits)?([eE][+-]?digits)?`)
/// in its one canonical form. Returns `false` (writing nothing) if `text` is not such a number.
fn put_decimal(sink: &mut impl Sink, text: &[u8]) -> bool {
    let (negative, rest) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.iter().position(|&b| b == b'e' || b == b'E') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (int_part, frac_part, has_point) = match mantissa.iter().position(|&b| b == b'.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..], true),
        None => (mantissa, &mantissa[..0], false),
    };
    let all_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if int_part.is_empty()
        || (has_point && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return false;
    }
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(b"+").or(e.strip_prefix(b"-")).unwrap_or(e);
            if digits.is_empty() || !all_digits(digits) {
                return false;
            }
            match std::str::from_utf8(e).ok().and_then(|e| e.parse().ok()) {
                Some(e) => e,
                None => return false,
            }
        }
    };
    // The digits of int_part ‖ frac_part without leading and trailing zeros, and where the
    // decimal point falls relative to the first kept digit.
    let digit_at = |i: usize| {
        if i < int_part.len() {
            int_part[i]
        } else {
            frac_part[i - int_part.len()]
        }
    };
    let total = int_part.len() + frac_part.len();
    let Some(first) = (0..total).find(|&i| digit_at(i) != b'0') else {
        sink.put(&[tag::ZERO]);
        return true;
    };
    let last = (0..total)
        .rev()
        .find(|&i| digit_at(i) != b'0')
        .unwrap_or(first);
    let point = (int_part.len() as i64 - first as i64).saturating_add(exponent);
    sink.put(&[if negative {
        tag::NEGATIVE
    } else {
        tag::POSITIVE
    }]);
    sink.put(&point.to_be_bytes());
    put_len(sink, last + 1 - first);
    // The kept digits may straddle the decimal point: write the two parts.
    let (a, b) = (first.min(int_part.len()), (last + 1).min(int_part.len()));
    sink.put(&int_part[a..b]);
    let (c, d) = (
        first.saturating_sub(int_part.len()),
        (last + 1).saturating_sub(int_part.len()),
    );
    sink.put(&frac_part[c..d]);
    true
}

/// Writes a number from its `Display` form.
fn put_number(sink: &mut impl Sink, number: impl fmt::Display) -> Result<(), EncodeError> {
    let mut text = StackText::new();
    write!(text, "{number}").map_err(|_| EncodeError::Serialize)?;
    if put_decimal(sink, text.as_bytes()) {
        Ok(())
    } else {
        Err(EncodeError::Serialize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::{BTreeMap, HashMap};

    fn bytes<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        encode(value, &mut out).unwrap();
        out
    }

    fn number(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(put_decimal(&mut out, text.as_bytes()), "{text}");
        out
    }

    #[test]
    fn one_form_per_number() {
        for same in [
            &["1", "1.0", "1.00", "10e-1", "0.1e1", "1E0", "001"][..],
            &["1200", "1.2e3", "12e2", "1200.000"],
            &["-0.015", "-1.5e-2", "-0.0150"],
            &["0", "-0", "0.0", "0e10", "-0.000e-3"],
        ] {
            let first = number(same[0]);
            for text in &same[1..] {
                assert_eq!(number(text), first, "{text} vs {}", same[0]);
            }
        }
        assert_ne!(number("1"), number("-1"));
        assert_ne!(number("1"), number("10"));
        assert_ne!(number("12"), number("1.2"));
        assert_ne!(number("0.5"), number("5"));
        // value = 0.12 × 10^4
        assert_eq!(
            number("1200"),
            [&b"+"[..], &4i64.to_be_bytes(), &2u64.to_be_bytes(), b"12"].concat()
        );
        for bad in [
            "", "-", ".5", "1.", "1e", "e5", "1.2.3", "0x10", "1e+", "NaN",
        ] {
            assert!(!put_decimal(&mut Vec::new(), bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn rust_values_encode_as_their_json_values() {
        #[derive(Serialize)]
        struct Inner {
            zeta: u8,
            alpha: Option<&'static str>,
        }
        #[derive(Serialize)]
        enum Kind {
            Unit,
            Newtype(i32),
            Tuple(i32, bool),
            Struct { b: u8, a: u8 },
        }
        #[derive(Serialize)]
        struct Outer {
            inner: Inner,
            kinds: Vec<Kind>,
            bytes: serde_bytes_like::Bytes,
            tuple: (char, f32, f64),
            map: BTreeMap<u32, ()>,
        }
        mod serde_bytes_like {
            pub(crate) struct Bytes(pub &'static [u8]);
            impl serde::Serialize for Bytes {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.serialize_bytes(self.0)
                }
            }
        }
        let value = Outer {
            inner: Inner {
                zeta: 3,
                alpha: None,
            },
            kinds: vec![
                Kind::Unit,
                Kind::Newtype(-4),
                Kind::Tuple(5, true),
                Kind::Struct { b: 1, a: 2 },
            ],
            bytes: serde_bytes_like::Bytes(&[0, 255]),
            tuple: ('é', 0.1, 1e300),
            map: BTreeMap::from([(10, ()), (9, ())]),
        };
        let as_json = json!({
            "inner": {"alpha": null, "zeta": 3},
            "kinds": ["Unit", {"Newtype": -4}, {"Tuple": [5, true]}, {"Struct": {"a": 2, "b": 1}}],
            "bytes": [0, 255],
            "tuple": ["é", 0.1, 1e300],
            "map": {"10": null, "9": null},
        });
        assert_eq!(bytes(&value), bytes(&as_json));
    }

    #[test]
    fn key_order_never_matters() {
        let mut h = HashMap::new();
        for i in 0..50 {
            h.insert(format!("k{i}"), i);
        }
        let b: BTreeMap<_, _> = h.clone().into_iter().collect();
        assert_eq!(bytes(&h), bytes(&b));
    }

    #[test]
    fn structure_is_unambiguous() {
        // Strings that look like encodings, arrays vs concatenations, keys vs values.
        let cases = [
            json!(["ab"]),
            json!(["a", "b"]),
            json!([["a"], "b"]),
            json!({"a": "b"}),
            json!({"ab": null}),
            json!(["a", null]),
            json!("s\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{1}x"),
            json!(["x"]),
            json!([]),
            json!({}),
            json!(null),
            json!(""),
            json!(0),
            json!(false),
        ];
        for (i, a) in cases.iter().enumerate() {
            for b in &cases[i + 1..] {
                assert_ne!(bytes(a), bytes(b), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn unrepresentable_keys_are_errors_that_quote_nothing() {
        let mut m = BTreeMap::new();
        m.insert((1, 2), "hunter2");
        let err = encode(&m, &mut Vec::new()).unwrap_err();
        assert_eq!(err, EncodeError::KeyMustBeString);
        assert!(!err.to_string().contains("hunter2"));
        struct Failing;
        impl Serialize for Failing {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("bad value hunter2"))
            }
        }
        let err = encode(&Failing, &mut Vec::new()).unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn non_finite_floats_are_null_as_in_serde_json() {
        assert_eq!(
            bytes(&f64::NAN),
            bytes(&serde_json::to_value(f64::NAN).unwrap())
        );
        assert_eq!(bytes(&f32::INFINITY), b"n");
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            prop::num::f64::NORMAL.prop_map(|f| Value::from(f.trunc())),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// What a store hands back (the JSON text re-read, or the digits `jsonb` keeps
        /// re-read) encodes exactly as the value that was written.
        #[test]
        fn json_text_round_trips_keep_the_bytes(value in arb_json()) {
            let text = serde_json::to_string(&value).unwrap();
            let back: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(bytes(&back), bytes(&value));
        }

        /// Postgres keeps a number's decimal value but may rewrite its form: `1e16` comes
        /// back as `10000000000000000`, which serde_json reads as an integer.
        #[test]
        fn rewritten_number_forms_keep_the_bytes(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let written = serde_json::to_string(&f).unwrap();
            let positional = positional(&written);
            let back: Value = serde_json::from_str(&positional).unwrap();
            prop_assert_eq!(bytes(&back), bytes(&f), "{} as {}", written, positional);
        }

        #[test]
        fn different_numbers_differ(a in any::<i64>(), b in any::<i64>(), small in -1_000_000i32..1_000_000) {
            prop_assume!(a != b);
            prop_assert_ne!(bytes(&a), bytes(&b));
            prop_assert_ne!(bytes(&(f64::from(small) + 0.5)), bytes(&small));
            prop_assert_eq!(bytes(&f64::from(small)), bytes(&small));
        }
    }

    /// `text` (a JSON number) without an exponent, as Postgres prints a `numeric`.
    fn positional(text: &str) -> String {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exp) = match rest.split_once(['e', 'E']) {
            Some((m, e)) => (m, e.parse::<i64>().unwrap()),
            None => (rest, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = format!("{int}{frac}");
        let point = int.len() as i64 + exp;
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{}{}", if negative { "-" } else { "" }, body)
    }
}
