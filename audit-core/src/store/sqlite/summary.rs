//! Key summaries of the buckets: for each bucket of positions, a 4 KiB Bloom filter of the
//! keys a rare-key lookup seeks (usernames, resource ids and targets, request ids), so that
//! such a lookup seeks only the buckets that may hold its key instead of every one.
//!
//! A key index is ordered by bucket first (see [`super::layout`]), so a key that is not in
//! the newest buckets costs one index seek per bucket: 977 at a million events. A bucket's
//! summary answers "may this bucket hold key k?" with no false "no" and about one false "yes"
//! in a hundred; reading all of them is one pass over a small table.
//!
//! * **Writing.** The append that inserts an event adds its keys to its bucket's summary in
//!   the same transaction ([`record`]), so a summary covers every event of its bucket. A
//!   purge deletes the summaries of the buckets it empties; a bucket partly purged keeps its
//!   summary, which may then say "yes" for keys no longer there (a seek finds nothing).
//! * **Reading.** [`Probes`] are the keys of a filter, each spelled as the store compares it
//!   (usernames fold ASCII case, as `COLLATE NOCASE` does); [`candidates`] are the buckets
//!   whose summaries may hold all of them.
//! * **Format.** 512 little-endian 64-bit words, stored in [`PARTS`] rows of 64 words keyed
//!   `(part, bucket)`, so that a probe reads one part of every summary (about 60 pages at a
//!   million events) rather than all of them. A key's stable 64-bit hash
//!   ([`key_hash`], FNV-1a with a final mix, never the process-seeded `std` hasher: summaries
//!   outlive the process) picks one word and four bits in it. Changing any of this changes
//!   what stored summaries mean: it needs a migration that rebuilds them.

use std::collections::{BTreeMap, HashSet};

use rusqlite::{Connection, OptionalExtension};

use super::layout::bucket_of;
use crate::AuditEvent;
use crate::query::{Filter, UserMatch};
use crate::store::StoreError;
use crate::store::log::Entry;
use crate::store::storable::storable_str;

/// The table of summaries: `(part, bucket, words)`, `WITHOUT ROWID`.
pub(super) const SUMMARY_TABLE: &str = "audit_log_bucket_keys";

/// Words of a summary.
const WORDS: usize = 512;

/// The rows a summary is stored in.
const PARTS: usize = 8;

/// Words of a part.
const PART_WORDS: usize = WORDS / PARTS;

/// Bytes of a part, as stored.
const PART_BYTES: usize = PART_WORDS * 8;

/// A key, tagged with what it is (a username and a resource id that are the same text are
/// different keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key<'a> {
    /// Compared case-insensitively (ASCII), as `COLLATE NOCASE` does.
    Username(&'a str),
    ResourceId(&'a str),
    ResourceTarget(&'a str),
    RequestId(&'a [u8; 16]),
}

impl Key<'_> {
    /// The event's keys, as stored.
    fn of(event: &AuditEvent) -> impl Iterator<Item = Key<'_>> {
        [
            Some(Key::Username(&event.actor.username)),
            Some(Key::ResourceId(&event.resource_id)),
            Some(Key::ResourceTarget(&event.resource_target)),
            event
                .request_id
                .as_ref()
                .map(|id| Key::RequestId(id.as_bytes())),
        ]
        .into_iter()
        .flatten()
    }
}

/// The stable 64-bit hash of a key: FNV-1a over a tag byte and the key's bytes (a username's
/// ASCII-lowercased), then MurmurHash3's 64-bit finaliser so every bit depends on every byte.
pub(super) fn key_hash(key: Key<'_>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let step = |h: u64, b: u8| (h ^ u64::from(b)).wrapping_mul(PRIME);
    let (tag, bytes, fold): (u8, &[u8], bool) = match key {
        Key::Username(s) => (1, s.as_bytes(), true),
        Key::ResourceId(s) => (2, s.as_bytes(), false),
        Key::ResourceTarget(s) => (3, s.as_bytes(), false),
        Key::RequestId(id) => (4, id.as_slice(), false),
    };
    let mut h = step(OFFSET, tag);
    for &b in bytes {
        h = step(h, if fold { b.to_ascii_lowercase() } else { b });
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Where a key lives in a summary: one word, and the bits of it the key sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Probe {
    word: usize,
    mask: u64,
}

impl Probe {
    pub(super) fn of(key: Key<'_>) -> Self {
        let h = key_hash(key);
        let mask = (0..4).fold(0u64, |m, i| m | 1 << ((h >> (6 * i)) & 63));
        Probe {
            word: (h >> 55) as usize % WORDS,
            mask,
        }
    }

    /// The part of a summary that holds the key's word.
    fn part(self) -> usize {
        self.word / PART_WORDS
    }

    /// Whether `part` (the stored bytes of [`Self::part`]) may hold the key. A part of
    /// another size (which this build never writes) may hold anything.
    fn may_hold(self, part: &[u8]) -> bool {
        if part.len() != PART_BYTES {
            return true;
        }
        let at = (self.word % PART_WORDS) * 8;
        let mut word = [0u8; 8];
        word.copy_from_slice(&part[at..at + 8]);
        u64::from_le_bytes(word) & self.mask == self.mask
    }
}

/// One bucket's summary, being built.
struct Summary(Box<[u64; WORDS]>);

impl Summary {
    fn empty() -> Self {
        Summary(Box::new([0; WORDS]))
    }

    /// ORs the stored bytes of `part` into this summary.
    fn merge_part(&mut self, part: usize, bytes: &[u8]) {
        let words = &mut self.0[part * PART_WORDS..(part + 1) * PART_WORDS];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *word |= u64::from_le_bytes(b);
        }
    }

    fn add(&mut self, key: Key<'_>) {
        let probe = Probe::of(key);
        self.0[probe.word] |= probe.mask;
    }

    fn add_event(&mut self, event: &AuditEvent) {
        for key in Key::of(event) {
            self.add(key);
        }
    }

    /// The bytes of `part`, as stored.
    fn part_bytes(&self, part: usize) -> Vec<u8> {
        self.0[part * PART_WORDS..(part + 1) * PART_WORDS]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }
}

/// The probes a filter's keys make: a bucket is a candidate when, for every group, one of
/// its probes may be held (an email is any of the usernames recorded with it).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Probes(Vec<Vec<Probe>>);

/// The most usernames an email's probe tries; an email recorded with more is not probed.
const MAX_USERNAMES: usize = 16;

impl Probes {
    /// The probes of `filter`'s summarised keys; empty when it has none (every bucket is a
    /// candidate). An email is looked up among the recorded actors on `conn`.
    pub(super) fn of(conn: &Connection, filter: &Filter) -> Result<Self, StoreError> {
        let mut groups = Vec::new();
        if let Some(id) = filter.request_id() {
            groups.push(vec![Probe::of(Key::RequestId(id.as_bytes()))]);
        }
        // Text is compared as stored, where NUL became U+FFFD (as `sql` binds it).
        if let Some(id) = filter.resource_id() {
            groups.push(vec![Probe::of(Key::ResourceId(&storable_str(id)))]);
        }
        if let Some(target) = filter.resource_target() {
            groups.push(vec![Probe::of(Key::ResourceTarget(&storable_str(target)))]);
        }
        if let Some(UserMatch::Username(name)) = filter.username() {
            groups.push(vec![Probe::of(Key::Username(&storable_str(name)))]);
        }
        if let Some(email) = filter.email() {
            let email = storable_str(email);
            let mut stmt = conn.prepare_cached(
                "SELECT username FROM audit_recorded_actors WHERE email = ?1 LIMIT ?2",
            )?;
            let usernames = stmt
                .query_map(rusqlite::params![&*email, MAX_USERNAMES as i64 + 1], |r| {
                    r.get::<_, String>(0)
                })?
                .collect::<Result<Vec<_>, _>>()?;
            if usernames.len() <= MAX_USERNAMES {
                groups.push(
                    usernames
                        .iter()
                        .map(|u| Probe::of(Key::Username(u)))
                        .collect(),
                );
            }
        }
        Ok(Probes(groups))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The buckets whose summaries may hold every key of `probes`: for each probe, one pass over
/// the part of every summary that holds its word.
pub(super) fn candidates(conn: &Connection, probes: &Probes) -> Result<HashSet<i64>, StoreError> {
    let mut found: Option<HashSet<i64>> = None;
    for group in &probes.0 {
        let mut any = HashSet::new();
        for probe in group {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT bucket, words FROM {SUMMARY_TABLE} WHERE part = +?1"
            ))?;
            let mut rows = stmt.query([probe.part() as i64])?;
            while let Some(row) = rows.next()? {
                if probe.may_hold(row.get_ref(1)?.as_blob().unwrap_or_default()) {
                    any.insert(row.get::<_, i64>(0)?);
                }
            }
        }
        found = Some(match found {
            None => any,
            Some(all) => all.intersection(&any).copied().collect(),
        });
    }
    Ok(found.unwrap_or_default())
}

/// Adds the keys of `inserted` to the summaries of their buckets, in the append's
/// transaction.
pub(super) fn record(conn: &Connection, inserted: &[Entry<'_>]) -> Result<(), StoreError> {
    let mut added: BTreeMap<i64, Summary> = BTreeMap::new();
    for entry in inserted {
        added
            .entry(bucket_of(entry.seq))
            .or_insert_with(Summary::empty)
            .add_event(&entry.event);
    }
    for (bucket, summary) in added {
        write(conn, bucket, summary)?;
    }
    Ok(())
}

/// Merges `summary` into the stored one of `bucket`, part by part (a part it adds nothing
/// to is left as it is).
fn write(conn: &Connection, bucket: i64, mut summary: Summary) -> Result<(), StoreError> {
    let mut read = conn.prepare_cached(&format!(
        "SELECT words FROM {SUMMARY_TABLE} WHERE part = ?1 AND bucket = ?2"
    ))?;
    let mut upsert = conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {SUMMARY_TABLE} (part, bucket, words) VALUES (?1, ?2, ?3)"
    ))?;
    for part in 0..PARTS {
        if summary.0[part * PART_WORDS..(part + 1) * PART_WORDS]
            .iter()
            .all(|w| *w == 0)
        {
            continue;
        }
        let stored: Option<Vec<u8>> = read
            .query_row(rusqlite::params![part as i64, bucket], |r| r.get(0))
            .optional()?;
        if let Some(stored) = stored {
            summary.merge_part(part, &stored);
        }
        upsert.execute(rusqlite::params![
            part as i64,
            bucket,
            summary.part_bytes(part)
        ])?;
    }
    Ok(())
}

/// The summaries table, and every stored event's keys in it (a migration's step).
pub(super) fn create_and_fill(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(&format!(
        "CREATE TABLE {SUMMARY_TABLE} (
            part INTEGER NOT NULL,
            bucket INTEGER NOT NULL,
            words BLOB NOT NULL,
            PRIMARY KEY (part, bucket)
        ) WITHOUT ROWID;"
    ))?;
    let mut stmt = conn.prepare(
        "SELECT seq, username, resource_id, resource_target, request_id FROM audit_logs \
         ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut current: Option<(i64, Summary)> = None;
    while let Some(row) = rows.next()? {
        let bucket = bucket_of(u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0));
        if current.as_ref().is_some_and(|(b, _)| *b != bucket)
            && let Some((b, summary)) = current.take()
        {
            write(conn, b, summary)?;
        }
        let (_, summary) = current.get_or_insert_with(|| (bucket, Summary::empty()));
        let text = |i: usize| -> rusqlite::Result<String> { row.get(i) };
        summary.add(Key::Username(&text(1)?));
        summary.add(Key::ResourceId(&text(2)?));
        summary.add(Key::ResourceTarget(&text(3)?));
        if let Ok(Some(id)) = row.get_ref(4)?.as_blob_or_null()
            && let Ok(id) = <&[u8; 16]>::try_from(id)
        {
            summary.add(Key::RequestId(id));
        }
    }
    if let Some((b, summary)) = current {
        write(conn, b, summary)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_because_stored_summaries_depend_on_it() {
        // Changing these values changes what every stored summary means: a migration must
        // rebuild them.
        let hashes = [
            key_hash(Key::Username("dana")),
            key_hash(Key::ResourceId("dana")),
            key_hash(Key::ResourceTarget("dana")),
            key_hash(Key::RequestId(&[7; 16])),
        ];
        assert_eq!(
            hashes.map(|h| format!("{h:016x}")),
            [
                "bffb41ca8cab62ee",
                "c951b0ba626fd4dd",
                "1d34ef73a1256d3f",
                "b63f5d1e55cfcccb"
            ]
        );
    }

    #[test]
    fn usernames_fold_ascii_case_only_and_kinds_differ() {
        assert_eq!(
            key_hash(Key::Username("Dana")),
            key_hash(Key::Username("dANA"))
        );
        assert_ne!(key_hash(Key::Username("É")), key_hash(Key::Username("é")));
        assert_ne!(
            key_hash(Key::ResourceId("Dana")),
            key_hash(Key::ResourceId("dana"))
        );
        assert_ne!(
            key_hash(Key::ResourceId("x")),
            key_hash(Key::ResourceTarget("x"))
        );
    }

    #[test]
    fn a_summary_holds_every_key_added_and_few_others() {
        let mut summary = Summary::empty();
        let keys: Vec<String> = (0..3000).map(|i| format!("key-{i}")).collect();
        for k in &keys {
            summary.add(Key::ResourceTarget(k));
        }
        let holds = |key: Key<'_>| {
            let probe = Probe::of(key);
            let part = summary.part_bytes(probe.part());
            assert_eq!(part.len(), PART_BYTES);
            probe.may_hold(&part)
        };
        assert!(
            keys.iter().all(|k| holds(Key::ResourceTarget(k))),
            "no false no"
        );
        let false_yes = (0..10_000)
            .filter(|i| holds(Key::ResourceTarget(&format!("other-{i}"))))
            .count();
        assert!(false_yes < 300, "{false_yes} false yeses in 10,000");
        assert!(Probe::of(Key::ResourceTarget("x")).may_hold(&[1, 2, 3]));
    }

    #[test]
    fn merged_summaries_hold_both_sides() {
        let (mut a, mut b) = (Summary::empty(), Summary::empty());
        a.add(Key::Username("a"));
        b.add(Key::Username("b"));
        for part in 0..PARTS {
            a.merge_part(part, &b.part_bytes(part));
        }
        for key in [Key::Username("a"), Key::Username("b")] {
            let probe = Probe::of(key);
            assert!(probe.may_hold(&a.part_bytes(probe.part())));
        }
    }
}
