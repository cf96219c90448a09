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
//!   the same transaction ([`record`]), so a summary covers every event of its bucket. The
//!   summary is a column of the bucket's row in `audit_log_buckets` ([`SUMMARY_COLUMN`]),
//!   which every append rewrites anyway for the bucket's time span: it dirties no page an
//!   append would not. Once the log passes the last position of a **group** of
//!   [`GROUP`] buckets, the append that passes it also copies the group's summaries into
//!   [`GROUPS_TABLE`], transposed: one row per part of a summary, holding that part of each
//!   of the group's buckets.
//! * **Reading.** A probe needs one word of each summary. It reads the rows of its part in
//!   [`GROUPS_TABLE`] (one row per group of [`GROUP`] buckets: about 120 rows at a million
//!   events) and, for the buckets of groups the log has not passed yet, the word in their
//!   rows. Reading every bucket's own summary instead took a millisecond at a million events
//!   (each a 4 KiB value copied out of its own page); keeping only the parts table, written
//!   by every append, cost the append 8–16 more pages per batch and 5 % of its rate.
//! * **Purging.** A purge deletes the rows of the buckets it empties and the group rows whose
//!   buckets are all gone; a bucket or group partly purged keeps its summary, which may then
//!   say "yes" for keys no longer there (a seek finds nothing).
//! * **Probes.** [`Probes`] are the keys of a filter, each spelled as the store compares it
//!   (usernames fold ASCII case, as `COLLATE NOCASE` does); [`candidates`] are the buckets
//!   whose summaries may hold all of them.
//! * **Format.** 512 little-endian 64-bit words (4 KiB). A key's stable 64-bit hash
//!   ([`key_hash`], FNV-1a with a final mix, never the process-seeded `std` hasher: summaries
//!   outlive the process) picks one word and four bits in it. Changing any of this changes
//!   what stored summaries mean: it needs a migration that rebuilds them.

use std::collections::{BTreeMap, HashSet};

use rusqlite::{Connection, OptionalExtension};

use super::layout::{BUCKETS_TABLE, bucket_of};
use crate::AuditEvent;
use crate::query::{Filter, UserMatch};
use crate::store::log::Entry;
use crate::store::storable::storable_str;
use crate::store::{StoreError, columns};

/// The column of `audit_log_buckets` that holds each bucket's summary (`NULL`: none yet,
/// which may hold anything).
const SUMMARY_COLUMN: &str = "keys";

/// Words of a summary.
const WORDS: usize = 512;

/// Bytes of a summary, as stored.
const BYTES: usize = WORDS * 8;

/// Buckets in a group (and bits of a bucket number a group drops).
pub(super) const GROUP: i64 = 8;
const GROUP_BITS: u32 = 3;

/// Parts a summary is split into in [`GROUPS_TABLE`].
const PARTS: usize = 8;

/// Words of a part.
const PART_WORDS: usize = WORDS / PARTS;

/// The transposed summaries of whole groups: `rowid = part << 32 | group`, `words` the
/// part of each of the group's buckets in turn (`GROUP × PART_WORDS` words, 4 KiB).
pub(super) const GROUPS_TABLE: &str = "audit_log_key_groups";

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

impl<'a> Key<'a> {
    /// The keys a summary holds of one event, from its stored values.
    fn all(
        username: &'a str,
        resource_id: &'a str,
        resource_target: &'a str,
        request_id: Option<&'a [u8; 16]>,
    ) -> impl Iterator<Item = Key<'a>> {
        [
            Some(Key::Username(username)),
            Some(Key::ResourceId(resource_id)),
            Some(Key::ResourceTarget(resource_target)),
            request_id.map(Key::RequestId),
        ]
        .into_iter()
        .flatten()
    }

    /// The event's keys, as stored.
    fn of(event: &'a AuditEvent) -> impl Iterator<Item = Key<'a>> {
        Self::all(
            &event.actor.username,
            &event.resource_id,
            &event.resource_target,
            event.request_id.as_ref().map(|id| id.as_bytes()),
        )
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

    /// The SQL `substr` arguments that read the key's word from a stored summary.
    fn word_at(self) -> (i64, i64) {
        ((self.word * 8 + 1) as i64, 8)
    }

    /// Whether `word` (the stored bytes [`Self::word_at`] reads) may hold the key. Anything
    /// but 8 bytes (no summary, which this build never leaves) may hold anything.
    fn may_hold(self, word: &[u8]) -> bool {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            return true;
        };
        u64::from_le_bytes(word) & self.mask == self.mask
    }
}

/// One bucket's summary, being built.
struct Summary(Box<[u64; WORDS]>);

impl Summary {
    fn empty() -> Self {
        Summary(Box::new([0; WORDS]))
    }

    /// ORs a stored summary into this one.
    fn merge(&mut self, bytes: &[u8]) {
        for (word, chunk) in self.0.iter_mut().zip(bytes.chunks_exact(8)) {
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

    /// The summary as stored.
    fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|w| w.to_le_bytes()).collect()
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
                "SELECT username FROM audit_recorded_actors WHERE email = +?1 LIMIT +?2",
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

/// The buckets whose summaries may hold every key of `probes`, and how many buckets have
/// summaries; `head` is the log's head position (which groups are whole).
pub(super) fn candidates(
    conn: &Connection,
    probes: &Probes,
    head: u64,
) -> Result<(HashSet<i64>, usize), StoreError> {
    let whole = whole_groups(head);
    let mut found: Option<HashSet<i64>> = None;
    let mut summaries = 0;
    for group in &probes.0 {
        let mut any = HashSet::new();
        for probe in group {
            summaries = probe_groups(conn, *probe, whole, &mut any)?;
            summaries += probe_buckets(conn, *probe, whole * GROUP, &mut any)?;
        }
        found = Some(match found {
            None => any,
            Some(all) => all.intersection(&any).copied().collect(),
        });
    }
    Ok((found.unwrap_or_default(), summaries))
}

/// How many groups the log at `head` has passed the last position of.
fn whole_groups(head: u64) -> i64 {
    (bucket_of(head.saturating_add(1)) >> GROUP_BITS).max(0)
}

/// Adds the buckets of the first `whole` groups whose summaries may hold `probe`'s key;
/// returns how many buckets the group rows read cover.
fn probe_groups(
    conn: &Connection,
    probe: Probe,
    whole: i64,
    found: &mut HashSet<i64>,
) -> Result<usize, StoreError> {
    let part = (probe.word / PART_WORDS) as i64;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT rowid, words FROM {GROUPS_TABLE} WHERE rowid >= +?1 AND rowid < +?2"
    ))?;
    let mut rows = stmt.query([part << 32, (part << 32) + whole])?;
    let mut covered = 0;
    while let Some(row) = rows.next()? {
        let group = row.get::<_, i64>(0)? & 0xffff_ffff;
        let words = row.get_ref(1)?.as_blob().unwrap_or_default();
        for i in 0..GROUP {
            let at = (i as usize * PART_WORDS + probe.word % PART_WORDS) * 8;
            if probe.may_hold(words.get(at..at + 8).unwrap_or_default()) {
                found.insert(group * GROUP + i);
            }
        }
        covered += GROUP as usize;
    }
    Ok(covered)
}

/// Adds the buckets from `first` on whose own summaries may hold `probe`'s key; returns how
/// many it read.
fn probe_buckets(
    conn: &Connection,
    probe: Probe,
    first: i64,
    found: &mut HashSet<i64>,
) -> Result<usize, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT bucket, substr({SUMMARY_COLUMN}, +?1, +?2) FROM {BUCKETS_TABLE} \
         WHERE bucket >= +?3"
    ))?;
    let (at, len) = probe.word_at();
    let mut rows = stmt.query([at, len, first])?;
    let mut read = 0;
    while let Some(row) = rows.next()? {
        read += 1;
        let word = row.get_ref(1)?.as_blob_or_null().ok().flatten();
        if probe.may_hold(word.unwrap_or_default()) {
            found.insert(row.get::<_, i64>(0)?);
        }
    }
    Ok(read)
}

/// Adds the keys of `inserted` to the summaries of their buckets, and transposes the
/// groups the log passed, in the append's transaction: the head moved from `before` to
/// `after`.
pub(super) fn record(
    conn: &Connection,
    inserted: &[Entry<'_>],
    before: u64,
    after: u64,
) -> Result<(), StoreError> {
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
    for group in whole_groups(before)..whole_groups(after) {
        transpose(conn, group)?;
    }
    Ok(())
}

/// Writes the rows of `group` in [`GROUPS_TABLE`] from its buckets' summaries. A bucket
/// with no row (purged) holds nothing; one whose summary is missing or not one this build
/// writes may hold anything.
fn transpose(conn: &Connection, group: i64) -> Result<(), StoreError> {
    const ANYTHING: [u8; BYTES] = [0xff; BYTES];
    let part_bytes = PART_WORDS * 8;
    let mut parts = vec![vec![0u8; GROUP as usize * part_bytes]; PARTS];
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT bucket, {SUMMARY_COLUMN} FROM {BUCKETS_TABLE} WHERE bucket >= ?1 AND bucket < ?2"
    ))?;
    let mut rows = stmt.query([group * GROUP, (group + 1) * GROUP])?;
    while let Some(row) = rows.next()? {
        let i = (row.get::<_, i64>(0)? - group * GROUP) as usize;
        let stored = row.get_ref(1)?.as_blob_or_null().ok().flatten();
        let summary = stored.filter(|s| s.len() == BYTES).unwrap_or(&ANYTHING);
        for (p, part) in parts.iter_mut().enumerate() {
            part[i * part_bytes..(i + 1) * part_bytes]
                .copy_from_slice(&summary[p * part_bytes..(p + 1) * part_bytes]);
        }
    }
    let mut insert = conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {GROUPS_TABLE} (rowid, words) VALUES (?1, ?2)"
    ))?;
    for (p, part) in parts.into_iter().enumerate() {
        insert.execute(rusqlite::params![((p as i64) << 32) | group, part])?;
    }
    Ok(())
}

/// Deletes the group rows whose buckets all come before `first_bucket` (a purge's step).
pub(super) fn purge_groups(conn: &Connection, first_bucket: i64) -> Result<(), StoreError> {
    let gone = first_bucket >> GROUP_BITS;
    for p in 0..PARTS as i64 {
        conn.prepare_cached(&format!(
            "DELETE FROM {GROUPS_TABLE} WHERE rowid >= ?1 AND rowid < ?2"
        ))?
        .execute([p << 32, (p << 32) + gone])?;
    }
    Ok(())
}

/// Merges `summary` into the stored one of `bucket`, whose row the append has written.
fn write(conn: &Connection, bucket: i64, mut summary: Summary) -> Result<(), StoreError> {
    let stored: Option<Vec<u8>> = conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMN} FROM {BUCKETS_TABLE} WHERE bucket = ?1"
        ))?
        .query_row([bucket], |r| r.get(0))
        .optional()?
        .flatten();
    if let Some(stored) = stored {
        summary.merge(&stored);
    }
    conn.prepare_cached(&format!(
        "UPDATE {BUCKETS_TABLE} SET {SUMMARY_COLUMN} = ?2 WHERE bucket = ?1"
    ))?
    .execute(rusqlite::params![bucket, summary.to_bytes()])?;
    Ok(())
}

/// The summaries' column and groups table, and every stored event's keys in them (a
/// migration's step).
pub(super) fn create_and_fill(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(&format!(
        "ALTER TABLE {BUCKETS_TABLE} ADD COLUMN {SUMMARY_COLUMN} BLOB;
        CREATE TABLE {GROUPS_TABLE} (words BLOB NOT NULL);"
    ))?;
    let mut stmt = conn.prepare(
        "SELECT seq, username, resource_id, resource_target, request_id FROM audit_logs \
         ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut current: Option<(i64, Summary)> = None;
    while let Some(row) = rows.next()? {
        let bucket = bucket_of(columns::seq_value(row.get(0)?)?);
        if current.as_ref().is_some_and(|(b, _)| *b != bucket)
            && let Some((b, summary)) = current.take()
        {
            write(conn, b, summary)?;
        }
        let (_, summary) = current.get_or_insert_with(|| (bucket, Summary::empty()));
        let text = |i: usize| -> rusqlite::Result<String> { row.get(i) };
        let (username, resource_id, target) = (text(1)?, text(2)?, text(3)?);
        let request_id = row
            .get_ref(4)?
            .as_blob_or_null()
            .ok()
            .flatten()
            .and_then(|id| <&[u8; 16]>::try_from(id).ok());
        for key in Key::all(&username, &resource_id, &target, request_id) {
            summary.add(key);
        }
    }
    if let Some((b, summary)) = current {
        write(conn, b, summary)?;
    }
    let head = super::append::head_row(conn)?.seq;
    let first: i64 = conn.query_row(
        &format!("SELECT COALESCE(MIN(bucket), 0) FROM {BUCKETS_TABLE}"),
        [],
        |r| r.get(0),
    )?;
    for group in (first >> GROUP_BITS)..whole_groups(head) {
        transpose(conn, group)?;
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
        let bytes = summary.to_bytes();
        assert_eq!(bytes.len(), BYTES);
        let holds = |key: Key<'_>| {
            let probe = Probe::of(key);
            let (at, len) = probe.word_at();
            let (at, len) = (at as usize - 1, len as usize);
            probe.may_hold(&bytes[at..at + len])
        };
        assert!(
            keys.iter().all(|k| holds(Key::ResourceTarget(k))),
            "no false no"
        );
        let false_yes = (0..10_000)
            .filter(|i| holds(Key::ResourceTarget(&format!("other-{i}"))))
            .count();
        assert!(false_yes < 300, "{false_yes} false yeses in 10,000");
        assert!(
            Probe::of(Key::ResourceTarget("x")).may_hold(&[]),
            "no summary"
        );
    }

    /// The buckets `candidates` gives for a username, on `conn` whose head is `head`.
    fn candidates_of(conn: &Connection, username: &str, head: u64) -> Vec<i64> {
        let probes = Probes(vec![vec![Probe::of(Key::Username(username))]]);
        let mut found: Vec<i64> = candidates(conn, &probes, head)
            .unwrap()
            .0
            .into_iter()
            .collect();
        found.sort_unstable();
        found
    }

    #[test]
    fn groups_and_bucket_rows_find_a_rare_key_and_a_missing_summary_may_hold_anything() {
        use crate::store::Store;
        let mut store = super::super::SqliteStore::in_memory().unwrap();
        let events: Vec<AuditEvent> = (0..20_000u32)
            .map(|i| {
                let user = match i {
                    5 | 19_000 => "rare",
                    _ => "common",
                };
                let mut e = AuditEvent::builder("login")
                    .actor(crate::Actor::new("id", user, "e@x"))
                    .build();
                e.id = uuid::Uuid::from_u128(u128::from(i) + 1);
                e
            })
            .collect();
        for chunk in events.chunks(1_000) {
            store.append(chunk).unwrap();
        }
        let conn = &store.conn;
        let head = 20_000;
        // Bucket 0 (positions 1..=1023) is in the first group's rows; bucket 18 (18,432 to
        // 19,455) is past the two whole groups, in its own row.
        assert_eq!(whole_groups(head), 2);
        let rare = candidates_of(conn, "rare", head);
        assert!(rare.contains(&0) && rare.contains(&18), "{rare:?}");
        assert!(rare.len() <= 4, "a rare key is in few buckets: {rare:?}");
        // A summary that is missing when its group is transposed may hold anything.
        conn.execute(
            "UPDATE audit_log_buckets SET keys = NULL WHERE bucket = 3",
            [],
        )
        .unwrap();
        transpose(conn, 0).unwrap();
        assert!(candidates_of(conn, "rare", head).contains(&3));
        assert!(candidates_of(conn, "nobody", head).contains(&3));
    }

    #[test]
    fn merged_summaries_hold_both_sides() {
        let (mut a, mut b) = (Summary::empty(), Summary::empty());
        a.add(Key::Username("a"));
        b.add(Key::Username("b"));
        a.merge(&b.to_bytes());
        let bytes = a.to_bytes();
        for key in [Key::Username("a"), Key::Username("b")] {
            let probe = Probe::of(key);
            let at = probe.word_at().0 as usize - 1;
            assert!(probe.may_hold(&bytes[at..at + 8]));
        }
    }
}
