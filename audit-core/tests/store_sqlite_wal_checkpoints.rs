//! The SQLite writer's checkpoints (`Options::background_wal_checkpoints`): a writer's background
//! thread copies the write-ahead log into the file while the writer appends and a reader
//! reads, nothing is lost or counted as failed, and closing the store folds the log into the
//! file; a purge that fills the log wakes the thread too; with the option off, SQLite
//! checkpoints in the appends as it does by default.
#![cfg(feature = "sqlite")]

#[macro_use]
mod store_support;

use std::path::Path;
use std::time::{Duration, Instant};

use audit_core::AuditEvent;
use audit_core::query::Filter;
use audit_core::store::sqlite::{Options, SqliteStore, WalCheckpointStats};
use audit_core::store::{Count, PurgeOptions, Store};
use store_support::{base_time, events, temp_dir};

/// Events of about 6 KB each, so that a few hundred fill a thousand pages of the log.
fn bulky(n: usize) -> Vec<AuditEvent> {
    let mut all = events(11, n, base_time());
    for (i, e) in all.iter_mut().enumerate() {
        let note = format!("{i:06}<&>\u{7}").repeat(600);
        e.additional_fields.insert("note".into(), note.into());
    }
    all
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Waits (at most 30 seconds) for the writer's first background checkpoint.
fn wait_for_a_background_checkpoint(store: &SqliteStore) {
    let start = Instant::now();
    while store.wal_checkpoint_stats().background == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no background checkpoint: {:?}",
            store.wal_checkpoint_stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn count_all(store: &mut SqliteStore) -> Count {
    store.count(&Filter::default(), u64::MAX).unwrap()
}

#[test]
fn a_writer_checkpoints_in_the_background_while_a_reader_reads_and_nothing_is_lost() {
    let dir = temp_dir("wal-checkpoints-background");
    let path = dir.join("audit.db");
    let mut store = SqliteStore::open(&path).unwrap();
    let all = bulky(2_000);
    let mut reader: Option<SqliteStore> = None;
    for (i, batch) in all.chunks(100).enumerate() {
        store.append(batch).unwrap();
        if i == 1 {
            reader = Some(SqliteStore::open_read_only(&path).unwrap());
        }
        if let Some(reader) = reader.as_mut() {
            assert_eq!(count_all(reader), Count::Exact(100 * (i as u64 + 1)));
        }
    }
    // The thread runs on its own time.
    wait_for_a_background_checkpoint(&store);
    let stats = store.wal_checkpoint_stats();
    assert_eq!((stats.failures, stats.last_failure.clone()), (0, None));
    assert!(
        file_len(&path) >= 4 << 20,
        "the file holds the checkpointed pages while the writer is open: {} bytes",
        file_len(&path)
    );
    let wal = dir.join("audit.db-wal");
    assert!(
        file_len(&wal) <= 80 << 20,
        "the log stays bounded: {} bytes",
        file_len(&wal)
    );
    drop(reader);
    drop(store);
    // The last connection to close folds the log into the file and removes it.
    assert!(!wal.exists(), "the log is left after the store closed");
    let mut reopened = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(count_all(&mut reopened), Count::Exact(2_000));
    let mut read: Vec<AuditEvent> = Vec::new();
    loop {
        let after = Some(read.len() as u64);
        let batch = reopened.newer(&Filter::default(), after, 1_000).unwrap();
        if batch.is_empty() {
            break;
        }
        read.extend(batch.into_iter().map(|stored| stored.event));
    }
    assert_eq!(read.len(), all.len());
    if let Some(i) = (0..all.len()).find(|&i| read[i] != all[i]) {
        panic!(
            "event {i} reads back as {:?}, appended as {:?}",
            read[i].id, all[i].id
        );
    }
}

#[test]
fn with_background_checkpoints_off_the_appends_checkpoint_as_sqlite_does() {
    let dir = temp_dir("wal-checkpoints-inline");
    let path = dir.join("audit.db");
    let options = Options {
        background_wal_checkpoints: false,
        ..Options::default()
    };
    let mut store = SqliteStore::open_with(&path, options).unwrap();
    for batch in bulky(1_500).chunks(100) {
        store.append(batch).unwrap();
    }
    assert_eq!(store.wal_checkpoint_stats(), WalCheckpointStats::default());
    assert!(
        file_len(&path) >= 4 << 20,
        "SQLite's own checkpoint copied the log into the file: {} bytes",
        file_len(&path)
    );
    assert_eq!(count_all(&mut store), Count::Exact(1_500));
}

#[test]
fn readers_and_stores_in_memory_start_no_checkpoints() {
    let dir = temp_dir("wal-checkpoints-reader");
    let path = dir.join("audit.db");
    let mut store = SqliteStore::open(&path).unwrap();
    store.append(&bulky(10)).unwrap();
    let reader = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(reader.wal_checkpoint_stats(), WalCheckpointStats::default());
    let mut memory = SqliteStore::in_memory().unwrap();
    memory.append(&bulky(10)).unwrap();
    assert_eq!(memory.wal_checkpoint_stats(), WalCheckpointStats::default());
}

#[test]
fn a_purge_that_fills_the_log_wakes_the_thread() {
    let dir = temp_dir("wal-checkpoints-purge");
    let path = dir.join("audit.db");
    let wal = dir.join("audit.db-wal");
    // Frames in the log, which only grows until a checkpoint lets it start over: a header of
    // 32 bytes, then frames of a 24-byte header and an 8 KiB page.
    let frames = || file_len(&wal).saturating_sub(32) / (24 + 8192);
    let mut store = SqliteStore::open(&path).unwrap();
    let all = bulky(1_000);
    let mut appended = 0;
    // Appends of one event each (a dozen frames) bring the log short of the thread's mark
    // of 1,000 frames.
    while frames() < 970 {
        assert!(
            appended < all.len(),
            "{appended} events filled {} frames",
            frames()
        );
        store.append(&all[appended..=appended]).unwrap();
        appended += 1;
    }
    assert!(
        frames() < 1_000,
        "an append passed the mark: {} frames",
        frames()
    );
    assert_eq!(store.wal_checkpoint_stats().background, 0);
    // In batches of 10: each is a commit of a few pages, and each may wake the thread.
    let options = PurgeOptions {
        batch_size: 10,
        ..PurgeOptions::older_than(all[appended - 1].time)
    };
    let purged = store.purge(&options, None, &mut |_| {}).unwrap();
    assert_eq!(purged.events, appended as u64 - 1);
    assert!(
        frames() >= 1_000,
        "the purge wrote too little: {} frames",
        frames()
    );
    wait_for_a_background_checkpoint(&store);
    assert_eq!(store.wal_checkpoint_stats().failures, 0);
    assert_eq!(count_all(&mut store), Count::Exact(1));
}
