//! The serde serializer behind [`encode`](super::encode): walks any `Serialize` value and
//! streams its canonical encoding into a [`Sink`], buffering (and wiping) only the entries
//! of a map while they are sorted.

use std::fmt::{self, Write as _};
use std::ops::Range;

use serde::Serialize;
use serde::ser::{self, Impossible};
use zeroize::Zeroize;

use super::{EncodeError, Sink, StackText, put_len, put_number, put_str, tag};

/// The buffer of an object's entries. When the sink takes secrets ([`Sink::SECRET`]), it is
/// wiped when dropped, and its old allocation is wiped whenever it grows (a plain `Vec`
/// would free it unwiped).
pub(super) struct EntryBuf {
    bytes: Vec<u8>,
    wipe: bool,
}

impl EntryBuf {
    fn new(wipe: bool) -> Self {
        EntryBuf {
            bytes: Vec::new(),
            wipe,
        }
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }
}

impl Sink for EntryBuf {
    fn put(&mut self, bytes: &[u8]) {
        let needed = self.bytes.len() + bytes.len();
        if self.wipe && needed > self.bytes.capacity() {
            let mut grown = Vec::with_capacity(needed.max(64).next_power_of_two());
            grown.extend_from_slice(&self.bytes);
            let mut old = std::mem::replace(&mut self.bytes, grown);
            old.zeroize();
        }
        self.bytes.extend_from_slice(bytes);
    }
}

impl Drop for EntryBuf {
    fn drop(&mut self) {
        if self.wipe {
            self.bytes.zeroize();
        }
    }
}

/// The serde serializer behind [`encode`].
pub(super) struct Encoder<S> {
    pub(super) sink: S,
}

impl<S: Sink> Encoder<S> {
    fn put(&mut self, bytes: &[u8]) {
        self.sink.put(bytes);
    }

    fn number(&mut self, number: impl fmt::Display) -> Result<(), EncodeError> {
        put_number(&mut self.sink, number)
    }
}

/// The ten integer methods of a `Serializer`, each calling `self.$method(v)`.
macro_rules! integers_through {
    ($method:ident) => {
        fn serialize_i8(self, v: i8) -> Result<(), EncodeError> {
            self.$method(v)
        }
        fn serialize_i16(self, v: i16) -> Result<(), EncodeError> {
            self.$method(v)
        }
        fn serialize_i32(self, v: i32) -> Result<(), EncodeError> {
            self.$method(v)
        }
        fn serialize_i64(self, v: i64) -> Result<(), EncodeError> {
            self.$method(v)
        }
        fn serialize_i128(self, v: i128) -> Result<(), EncodeError> {
            self.$method(v)
        }
        fn serialize_u8(self, v: u8) -> Result<(), EncodeError> {
            self.$method(v)
        }
        fn serialize_u16(self, v: u16) -> Result<(), EncodeError> {
            self.$method(v)
        }
        fn serialize_u32(self, v: u32) -> Result<(), EncodeError> {
            self.$method(v)
        }
        fn serialize_u64(self, v: u64) -> Result<(), EncodeError> {
            self.$method(v)
        }
        fn serialize_u128(self, v: u128) -> Result<(), EncodeError> {
            self.$method(v)
        }
    };
}

impl<'a, S: Sink> ser::Serializer for &'a mut Encoder<S> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = ArrayEncoder<'a, S>;
    type SerializeTuple = ArrayEncoder<'a, S>;
    type SerializeTupleStruct = ArrayEncoder<'a, S>;
    type SerializeTupleVariant = ArrayEncoder<'a, S>;
    type SerializeMap = ObjectEncoder<'a, S>;
    type SerializeStruct = ObjectEncoder<'a, S>;
    type SerializeStructVariant = ObjectEncoder<'a, S>;

    fn serialize_bool(self, v: bool) -> Result<(), EncodeError> {
        self.put(&[if v { tag::TRUE } else { tag::FALSE }]);
        Ok(())
    }
    integers_through!(number);
    fn serialize_f32(self, v: f32) -> Result<(), EncodeError> {
        if !v.is_finite() {
            return self.serialize_unit();
        }
        // The shortest decimal that reads back as this f32 (`{:e}` keeps it short).
        put_number(&mut self.sink, format_args!("{v:e}"))
    }
    fn serialize_f64(self, v: f64) -> Result<(), EncodeError> {
        match serde_json::Number::from_f64(v) {
            // Formatted as serde_json writes it, so a store that keeps the digits as written
            // (Postgres `jsonb`) hands back this very decimal.
            Some(number) => put_number(&mut self.sink, number),
            None => self.serialize_unit(),
        }
    }
    fn serialize_char(self, v: char) -> Result<(), EncodeError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        put_str(&mut self.sink, tag::STRING, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        self.put(&[tag::ARRAY_START]);
        for byte in v {
            put_number(&mut self.sink, byte)?;
        }
        self.put(&[tag::ARRAY_END]);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), EncodeError> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), EncodeError> {
        self.put(&[tag::NULL]);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EncodeError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), EncodeError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        // A one-key object: no sorting needed.
        self.put(&[tag::OBJECT_START]);
        put_str(&mut self.sink, tag::KEY, variant);
        value.serialize(&mut *self)?;
        self.put(&[tag::OBJECT_END]);
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<ArrayEncoder<'a, S>, EncodeError> {
        self.put(&[tag::ARRAY_START]);
        Ok(ArrayEncoder {
            encoder: self,
            variant: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<ArrayEncoder<'a, S>, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<ArrayEncoder<'a, S>, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<ArrayEncoder<'a, S>, EncodeError> {
        self.put(&[tag::OBJECT_START]);
        put_str(&mut self.sink, tag::KEY, variant);
        self.put(&[tag::ARRAY_START]);
        Ok(ArrayEncoder {
            encoder: self,
            variant: true,
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<ObjectEncoder<'a, S>, EncodeError> {
        Ok(ObjectEncoder::new(self, false))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<ObjectEncoder<'a, S>, EncodeError> {
        Ok(ObjectEncoder::new(self, false))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<ObjectEncoder<'a, S>, EncodeError> {
        self.put(&[tag::OBJECT_START]);
        put_str(&mut self.sink, tag::KEY, variant);
        Ok(ObjectEncoder::new(self, true))
    }
}

/// Elements of an array (or of a tuple variant's array), streamed as they come.
pub(super) struct ArrayEncoder<'a, S> {
    encoder: &'a mut Encoder<S>,
    /// Inside `{"Variant": [...]}`: close the object too.
    variant: bool,
}

impl<S: Sink> ArrayEncoder<'_, S> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        value.serialize(&mut *self.encoder)
    }

    fn finish(self) -> Result<(), EncodeError> {
        self.encoder.put(&[tag::ARRAY_END]);
        if self.variant {
            self.encoder.put(&[tag::OBJECT_END]);
        }
        Ok(())
    }
}

/// A serde compound trait whose one method hands each value to `$call` and whose `end`
/// calls `finish`.
macro_rules! compound {
    ($trait:ident for $ty:ident, fn $method:ident(value) => $call:ident) => {
        impl<S: Sink> ser::$trait for $ty<'_, S> {
            type Ok = ();
            type Error = EncodeError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
                self.$call(value)
            }
            fn end(self) -> Result<(), EncodeError> {
                self.finish()
            }
        }
    };
    ($trait:ident for $ty:ident, fn $method:ident(key, value) => $call:ident) => {
        impl<S: Sink> ser::$trait for $ty<'_, S> {
            type Ok = ();
            type Error = EncodeError;
            fn $method<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), EncodeError> {
                self.$call(key, value)
            }
            fn end(self) -> Result<(), EncodeError> {
                self.finish()
            }
        }
    };
}

compound!(SerializeSeq for ArrayEncoder, fn serialize_element(value) => element);
compound!(SerializeTuple for ArrayEncoder, fn serialize_element(value) => element);
compound!(SerializeTupleStruct for ArrayEncoder, fn serialize_field(value) => element);
compound!(SerializeTupleVariant for ArrayEncoder, fn serialize_field(value) => element);

/// The entries of an object, buffered until the end so they can be written in key order.
pub(super) struct ObjectEncoder<'a, S> {
    encoder: &'a mut Encoder<S>,
    /// Keys and encoded values, back to back.
    buf: EntryBuf,
    /// Per entry: the key's bytes and the encoded value's bytes within `buf`.
    entries: Vec<(Range<usize>, Range<usize>)>,
    /// A key written by `serialize_key`, waiting for its value.
    pending_key: Option<Range<usize>>,
    /// Inside `{"Variant": {...}}`: close the outer object too.
    variant: bool,
}

impl<'a, S: Sink> ObjectEncoder<'a, S> {
    fn new(encoder: &'a mut Encoder<S>, variant: bool) -> Self {
        ObjectEncoder {
            encoder,
            buf: EntryBuf::new(S::SECRET),
            entries: Vec::new(),
            pending_key: None,
            variant,
        }
    }

    fn key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<Range<usize>, EncodeError> {
        let start = self.buf.len();
        key.serialize(KeyEncoder { buf: &mut self.buf })?;
        Ok(start..self.buf.len())
    }

    fn value<T: Serialize + ?Sized>(
        &mut self,
        key: Range<usize>,
        value: &T,
    ) -> Result<(), EncodeError> {
        let start = self.buf.len();
        value.serialize(&mut Encoder {
            sink: &mut self.buf,
        })?;
        self.entries.push((key, start..self.buf.len()));
        Ok(())
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        let key = self.key(key)?;
        self.value(key, value)
    }

    fn finish(mut self) -> Result<(), EncodeError> {
        let buf = &self.buf.bytes;
        // Already in order for sorted maps (serde_json's, BTreeMap); stable for duplicates.
        self.entries
            .sort_by(|(a, _), (b, _)| buf[a.clone()].cmp(&buf[b.clone()]));
        let sink = &mut self.encoder.sink;
        sink.put(&[tag::OBJECT_START]);
        for (key, value) in &self.entries {
            sink.put(&[tag::KEY]);
            put_len(sink, key.len());
            sink.put(&buf[key.clone()]);
            sink.put(&buf[value.clone()]);
        }
        sink.put(&[tag::OBJECT_END]);
        if self.variant {
            sink.put(&[tag::OBJECT_END]);
        }
        Ok(())
    }
}

impl<S: Sink> ser::SerializeMap for ObjectEncoder<'_, S> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        self.pending_key = Some(self.key(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        let key = self.pending_key.take().ok_or(EncodeError::Serialize)?;
        self.value(key, value)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

compound!(SerializeStruct for ObjectEncoder, fn serialize_field(key, value) => field);
compound!(SerializeStructVariant for ObjectEncoder, fn serialize_field(key, value) => field);

/// Writes a map key's text (raw bytes: the object writes the tag and length), turning the
/// keys JSON allows into strings as serde_json does.
pub(super) struct KeyEncoder<'a> {
    buf: &'a mut EntryBuf,
}

impl KeyEncoder<'_> {
    fn text(self, text: impl fmt::Display) -> Result<(), EncodeError> {
        let mut t = StackText::new();
        write!(t, "{text}").map_err(|_| EncodeError::KeyMustBeString)?;
        self.buf.put(t.as_bytes());
        Ok(())
    }
}

impl ser::Serializer for KeyEncoder<'_> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Impossible<(), EncodeError>;
    type SerializeTuple = Impossible<(), EncodeError>;
    type SerializeTupleStruct = Impossible<(), EncodeError>;
    type SerializeTupleVariant = Impossible<(), EncodeError>;
    type SerializeMap = Impossible<(), EncodeError>;
    type SerializeStruct = Impossible<(), EncodeError>;
    type SerializeStructVariant = Impossible<(), EncodeError>;

    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        self.buf.put(v.as_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), EncodeError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_bool(self, v: bool) -> Result<(), EncodeError> {
        self.text(v)
    }
    integers_through!(text);
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), EncodeError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    fn serialize_f32(self, _v: f32) -> Result<(), EncodeError> {
        Err(EncodeError::KeyMustBeString)
    }
    fn serialize_f64(self, _v: f64) -> Result<(), EncodeError> {
        Err(EncodeError::KeyMustBeString)
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), EncodeError> {
        Err(EncodeError::KeyMustBeString)
    }
    fn serialize_none(self) -> Result<(), EncodeError> {
        Err(EncodeError::KeyMustBeString)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), EncodeError> {
        Err(EncodeError::KeyMustBeString)
    }
    fn serialize_unit(self) -> Result<(), EncodeError> {
        Err(EncodeError::KeyMustBeString)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EncodeError> {
        Err(EncodeError::KeyMustBeString)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), EncodeError> {
        Err(EncodeError::KeyMustBeString)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, EncodeError> {
        Err(EncodeError::KeyMustBeString)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, EncodeError> {
        Err(EncodeError::KeyMustBeString)
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, EncodeError> {
        Err(EncodeError::KeyMustBeString)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, EncodeError> {
        Err(EncodeError::KeyMustBeString)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, EncodeError> {
        Err(EncodeError::KeyMustBeString)
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, EncodeError> {
        Err(EncodeError::KeyMustBeString)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, EncodeError> {
        Err(EncodeError::KeyMustBeString)
    }
}
