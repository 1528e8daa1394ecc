//! The wire format of a session record: a schema version and one MessagePack value per
//! stored field, keyed by the field's wire key.
//!
//! Each field is encoded on its own, so that server-side stores can keep one entry per field
//! (a Redis hash field, a map entry) and write only the fields that changed. A whole record,
//! as carried by a cookie, is framed as the MessagePack array `[version, {key: bin, ..}]`,
//! where each `bin` holds one field's own MessagePack encoding.
//!
//! Decoding is tolerant where schema evolution needs it (a missing field takes its default,
//! an unknown key is ignored) and strict everywhere else (any framing error, a value that does
//! not decode, or an unknown schema version is an error, which the session layer turns into a
//! fresh session).

use rmp::decode as rd;
use rmp::encode as wr;

pub use crate::error::{DecodeError, EncodeError};
pub use crate::guard::MAX_DEPTH;
pub use crate::schema::RawField;

use crate::schema::{is_internal, Databag, Internal, Tracked};

/// One field of a record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordField {
    /// The wire key.
    pub key: String,
    /// The field's own MessagePack encoding.
    pub value: Vec<u8>,
}

/// A session record as stores keep it: the schema version and the encoded fields.
///
/// A record made by [`Record::changes`] carries only the fields that changed; applying it to
/// a stored record with [`Record::merge`] is how server-side stores merge concurrent changes
/// field by field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The schema version of the [`Databag`] that wrote the record.
    pub version: u32,
    /// The encoded fields, at most one per key.
    pub fields: Vec<RecordField>,
}

/// What a record says of its session's owner; see [`Record::owner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerField<'a> {
    /// The record does not carry the owner field: in changes, the owner did not change; in
    /// a whole record, the session has no owner.
    Absent,
    /// The session has no owner (any more).
    Cleared,
    /// The session belongs to this owner (an [`OwnerKey`](crate::OwnerKey)'s text).
    Set(&'a str),
}

impl<'a> OwnerField<'a> {
    /// The owner, when the record names one.
    #[must_use]
    pub fn key(self) -> Option<&'a str> {
        match self {
            Self::Set(key) => Some(key),
            Self::Absent | Self::Cleared => None,
        }
    }
}

/// Session data decoded from a record.
#[derive(Debug)]
#[non_exhaustive]
pub struct Decoded<T> {
    /// The value.
    pub value: T,
    /// The schema version the record had, when it was older than the current one and the
    /// value was migrated (the whole record should then be written back).
    pub migrated_from: Option<u32>,
    /// The runtime's internal fields found in the record.
    internal: Internal,
}

impl<T: Databag> Decoded<T> {
    /// The value with change tracking: after a migration every field is marked changed, so
    /// the next save writes the record back in the current version.
    #[must_use]
    pub fn into_tracked(self) -> Tracked<T> {
        let mut tracked = Tracked::with_internal(self.value, self.internal);
        if self.migrated_from.is_some() {
            tracked.mark_all_changed();
        }
        tracked
    }
}

impl Record {
    /// Encodes every stored field of `value`.
    ///
    /// # Errors
    /// If a field's `Serialize` implementation fails.
    pub fn encode<T: Databag>(value: &T) -> Result<Self, EncodeError> {
        Self::encode_indices(value, 0..T::FIELDS.len())
    }

    /// Encodes only the fields of `tracked` that changed, internal fields included.
    ///
    /// # Errors
    /// If a field's `Serialize` implementation fails.
    pub fn changes<T: Databag>(tracked: &Tracked<T>) -> Result<Self, EncodeError> {
        let mut record = Self::encode_indices(tracked.get(), tracked.changes().iter())?;
        record.push_internal(tracked.internal().changed());
        Ok(record)
    }

    /// Encodes every stored field of `tracked` and its internal fields: the whole record of
    /// a session being created.
    ///
    /// # Errors
    /// If a field's `Serialize` implementation fails.
    pub fn full<T: Databag>(tracked: &Tracked<T>) -> Result<Self, EncodeError> {
        let mut record = Self::encode(tracked.get())?;
        record.push_internal(tracked.internal().present());
        Ok(record)
    }

    fn push_internal<'a>(&mut self, entries: impl Iterator<Item = (&'a str, &'a [u8])>) {
        self.fields.extend(entries.map(|(key, value)| RecordField {
            key: key.to_owned(),
            value: value.to_vec(),
        }));
    }

    fn encode_indices<T: Databag>(
        value: &T,
        indices: impl Iterator<Item = usize>,
    ) -> Result<Self, EncodeError> {
        let mut fields = Vec::new();
        for index in indices {
            let field = T::FIELDS.get(index).ok_or(EncodeError::NoSuchField {
                index,
                type_name: core::any::type_name::<T>(),
            })?;
            let mut bytes = Vec::new();
            value.encode_field(index, &mut bytes)?;
            fields.push(RecordField {
                key: field.key.to_owned(),
                value: bytes,
            });
        }
        Ok(Self {
            version: T::VERSION,
            fields,
        })
    }

    /// The value of the field stored under `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|field| field.key == key)
            .map(|field| field.value.as_slice())
    }

    /// The owner field this record carries (`#[databag(owner)]`), which a store's owner
    /// index follows: in a whole record, whose session it is; in the changes of a save,
    /// whether the save moves the session to another owner (or to none).
    #[must_use]
    pub fn owner(&self) -> OwnerField<'_> {
        match self.get(crate::schema::keys::OWNER) {
            None => OwnerField::Absent,
            // Anything but a string (nil, or bytes this runtime never writes) is no owner.
            Some(bytes) => crate::schema::read_str(bytes)
                .filter(|key| !key.is_empty())
                .map_or(OwnerField::Cleared, OwnerField::Set),
        }
    }

    /// Applies `changes` on top of this record: each of its fields replaces the field of the
    /// same key (or is added), every other field is kept, and the version becomes that of
    /// `changes`.
    pub fn merge(&mut self, changes: Record) {
        self.version = changes.version;
        for change in changes.fields {
            match self.fields.iter_mut().find(|field| field.key == change.key) {
                Some(field) => field.value = change.value,
                None => self.fields.push(change),
            }
        }
    }

    /// [`merge`](Self::merge) from a borrowed `changes`: a field already present takes the
    /// new bytes into its own buffer, so a save of existing fields allocates nothing.
    pub(crate) fn merge_from(&mut self, changes: &Record) {
        self.version = changes.version;
        for change in &changes.fields {
            match self.fields.iter_mut().find(|field| field.key == change.key) {
                Some(field) => {
                    field.value.clear();
                    field.value.extend_from_slice(&change.value);
                }
                None => self.fields.push(change.clone()),
            }
        }
    }

    /// Decodes the record as `T`, migrating it when it is older (see [`Decoded`]).
    ///
    /// # Errors
    /// If the version is newer than `T`'s or has no migration path, or a field does not
    /// decode.
    pub fn decode<T: Databag>(&self) -> Result<Decoded<T>, DecodeError> {
        fn borrow(field: &RecordField) -> RawField<'_> {
            RawField {
                key: &field.key,
                value: &field.value,
            }
        }
        // Most records have a few fields: borrowed on the stack, no allocation.
        if self.fields.len() <= INLINE_FIELDS {
            let mut raw = [EMPTY_FIELD; INLINE_FIELDS];
            for (slot, field) in raw.iter_mut().zip(&self.fields) {
                *slot = borrow(field);
            }
            return decode_fields(self.version, &raw[..self.fields.len()]);
        }
        let raw: Vec<RawField<'_>> = self.fields.iter().map(borrow).collect();
        decode_fields(self.version, &raw)
    }

    /// The record framed as one byte string (for stores that keep a record as one value,
    /// such as a cookie).
    ///
    /// # Errors
    /// If a part is larger than the format allows (over `u32::MAX` bytes or entries).
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(
            8 + self
                .fields
                .iter()
                .map(|f| f.key.len() + f.value.len() + 10)
                .sum::<usize>(),
        );
        write_frame(
            &mut out,
            self.version,
            self.fields
                .iter()
                .map(|f| (f.key.as_str(), f.value.as_slice())),
            self.fields.len(),
        )?;
        Ok(out)
    }

    /// Parses a framed record (see [`to_bytes`](Self::to_bytes)).
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] if the bytes are not a well-formed record.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (version, raw) = parse_frame(bytes)?;
        Ok(Self {
            version,
            fields: raw
                .into_iter()
                .map(|field| RecordField {
                    key: field.key.to_owned(),
                    value: field.value.to_vec(),
                })
                .collect(),
        })
    }
}

/// Encodes all stored fields of `value` as one framed record, without building a [`Record`].
///
/// # Errors
/// If a field's `Serialize` implementation fails.
pub fn encode_to_bytes<T: Databag>(value: &T) -> Result<Vec<u8>, EncodeError> {
    encode_with_internal(value, &Internal::new())
}

/// Encodes all stored fields of `tracked` and its internal fields as one framed record.
///
/// # Errors
/// If a field's `Serialize` implementation fails.
pub fn encode_tracked_to_bytes<T: Databag>(tracked: &Tracked<T>) -> Result<Vec<u8>, EncodeError> {
    encode_with_internal(tracked.get(), tracked.internal())
}

fn encode_with_internal<T: Databag>(
    value: &T,
    internal: &Internal,
) -> Result<Vec<u8>, EncodeError> {
    // One allocation: every value is encoded straight into the output, after room for the
    // widest `bin` header, then moved back to follow the header its length needs (the same
    // bytes as framing values encoded elsewhere). Sized for keys plus small values.
    let keys: usize = T::FIELDS.iter().map(|field| field.key.len() + 8).sum();
    let mut out = Vec::with_capacity(64 + keys + T::FIELDS.len() * 24);
    let count = T::FIELDS.len() + internal.present().count();
    write_frame(
        &mut out,
        T::VERSION,
        std::iter::empty::<(&str, &[u8])>(),
        count,
    )?;
    for (index, field) in T::FIELDS.iter().enumerate() {
        wr::write_str(&mut out, field.key).map_err(|_| too_large("field key"))?;
        let at = out.len();
        out.extend_from_slice(&[0; BIN_HEADER_MAX]);
        value.encode_field(index, &mut out)?;
        let len = out.len() - at - BIN_HEADER_MAX;
        let mut header = [0u8; BIN_HEADER_MAX];
        let mut rest = &mut header[..];
        let len_u32 = u32::try_from(len).map_err(|_| too_large("field value"))?;
        wr::write_bin_len(&mut rest, len_u32).map_err(|_| too_large("field value"))?;
        let header_len = BIN_HEADER_MAX - rest.len();
        out.copy_within(at + BIN_HEADER_MAX.., at + header_len);
        out.truncate(at + header_len + len);
        if let (Some(slot), Some(header)) =
            (out.get_mut(at..at + header_len), header.get(..header_len))
        {
            slot.copy_from_slice(header);
        }
    }
    for (key, value) in internal.present() {
        wr::write_str(&mut out, key).map_err(|_| too_large("field key"))?;
        wr::write_bin(&mut out, value).map_err(|_| too_large("field value"))?;
    }
    Ok(out)
}

/// The widest MessagePack `bin` header: marker and a 32-bit length.
const BIN_HEADER_MAX: usize = 5;

/// Decodes one framed record straight into `T` (borrowing the input, no intermediate
/// [`Record`]).
///
/// # Errors
/// [`DecodeError::Malformed`] for bad framing, or any error of [`Record::decode`].
pub fn decode_from_bytes<T: Databag>(bytes: &[u8]) -> Result<Decoded<T>, DecodeError> {
    let mut frame = Frame::open(bytes)?;
    // Most records have a few fields: borrowed on the stack, no allocation.
    if frame.remaining <= INLINE_FIELDS {
        let mut raw = [EMPTY_FIELD; INLINE_FIELDS];
        let mut len = 0;
        while let Some(field) = frame.next_field()? {
            // `remaining` bounds the count: never past the array.
            if let Some(slot) = raw.get_mut(len) {
                *slot = field;
                len += 1;
            }
        }
        return decode_fields(frame.version, &raw[..len]);
    }
    let (version, raw) = parse_frame(bytes)?;
    decode_fields(version, &raw)
}

/// Records of up to this many fields are decoded without allocating their field list.
const INLINE_FIELDS: usize = 16;

const EMPTY_FIELD: RawField<'static> = RawField {
    key: "",
    value: &[],
};

/// Decodes borrowed fields of a record of `version` as `T`, migrating older versions.
///
/// # Errors
/// If the version is newer than `T`'s or has no migration path, or a field does not decode.
pub fn decode_fields<T: Databag>(
    version: u32,
    fields: &[RawField<'_>],
) -> Result<Decoded<T>, DecodeError> {
    let mut internal = Internal::new();
    for field in fields.iter().filter(|field| is_internal(field.key)) {
        internal.insert_loaded(field.key, field.value);
    }
    match version.cmp(&T::VERSION) {
        core::cmp::Ordering::Equal => Ok(Decoded {
            value: T::decode_current(fields)?,
            migrated_from: None,
            internal,
        }),
        core::cmp::Ordering::Less => Ok(Decoded {
            value: T::decode_older(version, fields)?,
            migrated_from: Some(version),
            internal,
        }),
        core::cmp::Ordering::Greater => Err(DecodeError::NewerVersion {
            found: version,
            current: T::VERSION,
            type_name: core::any::type_name::<T>(),
        }),
    }
}

fn too_large(what: &'static str) -> EncodeError {
    EncodeError::TooLarge { what }
}

fn write_frame<'a>(
    out: &mut Vec<u8>,
    version: u32,
    fields: impl Iterator<Item = (&'a str, &'a [u8])>,
    count: usize,
) -> Result<(), EncodeError> {
    // Writes into a Vec cannot fail; the only errors left are lengths over u32::MAX.
    let count = u32::try_from(count).map_err(|_| too_large("field count"))?;
    wr::write_array_len(out, 2).map_err(|_| too_large("header"))?;
    wr::write_uint(out, u64::from(version)).map_err(|_| too_large("version"))?;
    wr::write_map_len(out, count).map_err(|_| too_large("field count"))?;
    for (key, value) in fields {
        wr::write_str(out, key).map_err(|_| too_large("field key"))?;
        wr::write_bin(out, value).map_err(|_| too_large("field value"))?;
    }
    Ok(())
}

fn malformed(reason: &'static str) -> DecodeError {
    DecodeError::Malformed { reason }
}

/// Splits `len` bytes off the front of `input`.
fn take<'a>(input: &mut &'a [u8], len: u32, reason: &'static str) -> Result<&'a [u8], DecodeError> {
    let len = usize::try_from(len).map_err(|_| malformed(reason))?;
    if input.len() < len {
        return Err(malformed(reason));
    }
    let (head, tail) = input.split_at(len);
    *input = tail;
    Ok(head)
}

fn parse_frame(bytes: &[u8]) -> Result<(u32, Vec<RawField<'_>>), DecodeError> {
    let mut frame = Frame::open(bytes)?;
    let mut fields = Vec::with_capacity(frame.remaining);
    while let Some(field) = frame.next_field()? {
        fields.push(field);
    }
    Ok((frame.version, fields))
}

/// A framed record read field by field, without collecting the fields.
struct Frame<'a> {
    version: u32,
    /// Fields not read yet.
    remaining: usize,
    input: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Reads the header; the fields follow with [`next_field`](Self::next_field).
    fn open(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut input = bytes;
        let header = rd::read_array_len(&mut input).map_err(|_| malformed("no record header"))?;
        if header != 2 {
            return Err(malformed("record header is not a pair"));
        }
        let version: u32 = rd::read_int(&mut input).map_err(|_| malformed("bad schema version"))?;
        let count = rd::read_map_len(&mut input).map_err(|_| malformed("no field map"))?;
        // Every entry takes at least two bytes, so a claimed count larger than that is a
        // lie; checking it first keeps an allocation sized by it bounded by the input size.
        let count = usize::try_from(count).map_err(|_| malformed("field count"))?;
        if count > input.len() / 2 {
            return Err(malformed("field count exceeds the record size"));
        }
        Ok(Self {
            version,
            remaining: count,
            input,
        })
    }

    /// The next field, or `None` after the last (when no byte may follow).
    fn next_field(&mut self) -> Result<Option<RawField<'a>>, DecodeError> {
        if self.remaining == 0 {
            if !self.input.is_empty() {
                return Err(malformed("trailing bytes after the record"));
            }
            return Ok(None);
        }
        self.remaining -= 1;
        let input = &mut self.input;
        let key_len = rd::read_str_len(input).map_err(|_| malformed("bad field key"))?;
        let key = take(input, key_len, "truncated field key")?;
        let key = core::str::from_utf8(key).map_err(|_| malformed("field key is not UTF-8"))?;
        let value_len = rd::read_bin_len(input).map_err(|_| malformed("bad field value"))?;
        let value = take(input, value_len, "truncated field value")?;
        Ok(Some(RawField { key, value }))
    }

    /// The value under `key` in the framed record `bytes` of `version`, if it is one and
    /// well-formed up to that field.
    #[cfg(feature = "cookie-store")]
    fn find(bytes: &'a [u8], version: u32, key: &str) -> Option<&'a [u8]> {
        let mut frame = Self::open(bytes).ok()?;
        if frame.version != version {
            return None;
        }
        while let Ok(Some(field)) = frame.next_field() {
            if field.key == key {
                return Some(field.value);
            }
        }
        None
    }
}

/// What the store held for a session when it was loaded, kept until the commit so that a
/// field set to the value it already had is not written again (see
/// [`Tracked::unmark_unchanged`]). It holds the loaded bytes themselves, never a digest: a
/// collision could otherwise drop a real change.
pub(crate) enum Snapshot {
    /// The record as a server-side store returned it.
    Fields(Record),
    /// The record shared with the store that holds it (the memory store: no copy).
    Shared(std::sync::Arc<Record>),
    /// The framed record as a cookie carried it.
    #[cfg(feature = "cookie-store")]
    Framed(Vec<u8>),
}

impl Snapshot {
    /// Unmarks the changes of `tracked` that leave a field as this snapshot holds it. Does
    /// nothing unless the snapshot is of `T`'s current version (a migrated record is
    /// written back whole).
    pub(crate) fn unmark_unchanged<T: Databag>(&self, tracked: &mut Tracked<T>) {
        if !tracked.is_changed() {
            return;
        }
        let record = match self {
            Self::Fields(record) => record,
            Self::Shared(record) => record,
            #[cfg(feature = "cookie-store")]
            Self::Framed(bytes) => {
                // A few changed fields, each looked up in the frame: no allocation.
                tracked.unmark_unchanged(|key| Frame::find(bytes, T::VERSION, key));
                return;
            }
        };
        if record.version == T::VERSION {
            tracked.unmark_unchanged(|key| record.get(key));
        }
    }
}
