//! The log watcher: one per server, it follows the store's head and tells every stream.
//!
//! Events may be appended by any process (the application writing the store while `audit
//! serve` reads it; several replicas writing one Postgres), so the store's head is the
//! truth. The watcher reads it every `poll` interval (SQLite: 250 ms) and, for Postgres,
//! also whenever a `NOTIFY audit_events` arrives on a `LISTEN` connection (then the poll is
//! only a safety net for a lost notification or connection). Each change is published on a
//! [`tokio::sync::watch`] channel as a [`Tip`]: the newest head, plus — when few events
//! arrived — those events themselves, read once and shared, so a thousand idle streams
//! wake to an in-memory filter instead of a thousand store queries.
//!
//! A stream that is behind (slow client, or more events arrived than the watcher shares)
//! reads from the store at its own position, so a slow client never makes the server
//! buffer, and never loses an event.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use crate::error::log_error;
use audit_core::store::StoredEvent;

use crate::log::Log;

/// At most this many new events are read once by the watcher and shared with every stream.
pub(crate) const SHARED_BATCH: usize = 256;

/// The store's head as the watcher last saw it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tip {
    /// The highest log position assigned.
    pub head: u64,
    /// The lowest position retained: it moves when the log is purged.
    pub first: u64,
    /// The events after `recent.after` up to `head`, all of them, if the watcher read them.
    pub recent: Option<Arc<Recent>>,
}

/// Every event with a log position in `(after, head]`, oldest first.
#[derive(Debug)]
pub(crate) struct Recent {
    pub after: u64,
    pub events: Vec<StoredEvent>,
}

impl Tip {
    /// The shared events after `position`, if the watcher holds all of them.
    pub(crate) fn events_after(&self, position: u64) -> Option<&[StoredEvent]> {
        let recent = self.recent.as_ref()?;
        if position < recent.after || position >= self.head {
            return None;
        }
        let skip = recent.events.partition_point(|e| e.seq <= position);
        Some(&recent.events[skip..])
    }
}

/// How the watcher learns of new events.
#[derive(Debug, Clone)]
pub(crate) struct WatchOptions {
    /// How often the head is read.
    pub poll: Duration,
    /// A Postgres URL to `LISTEN audit_events` on, as the wake-up.
    pub listen: Option<String>,
}

/// Starts the watcher: reads the head once (so the first tip is true), then follows it until
/// every receiver is gone or `closing` turns true.
pub(crate) async fn start(
    log: Log,
    options: WatchOptions,
    closing: watch::Receiver<bool>,
) -> Result<watch::Receiver<Tip>, crate::log::LogError> {
    let span = log.head().await?;
    let (tx, rx) = watch::channel(Tip {
        head: span.head,
        first: span.first,
        recent: None,
    });
    let wake = Arc::new(Notify::new());
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(url) = options.listen.clone() {
        listen::spawn(url, Arc::clone(&wake), Arc::clone(&stop));
    }
    tokio::spawn(async move {
        let _stop_listener = StopOnDrop(stop);
        follow(log, tx, wake, options.poll, closing).await;
    });
    Ok(rx)
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

async fn follow(
    log: Log,
    tx: watch::Sender<Tip>,
    wake: Arc<Notify>,
    poll: Duration,
    mut closing: watch::Receiver<bool>,
) {
    let mut last_error: Option<Instant> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = wake.notified() => {}
            () = tx.closed() => return,
            _ = closing.wait_for(|c| *c) => return,
        }
        let (previous, previous_first) = {
            let tip = tx.borrow();
            (tip.head, tip.first)
        };
        let span = match log.head().await {
            Ok(span) => span,
            Err(e) => {
                // Keep the last tip; streams keep waiting. Say so at most once a minute.
                if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    last_error = Some(Instant::now());
                    log_error(&format!(
                        "the log watcher cannot read the store's head: {}",
                        crate::error::ApiError::from(e)
                    ));
                }
                continue;
            }
        };
        if span.head == previous && span.first == previous_first {
            continue;
        }
        let recent = if span.head > previous && span.head - previous <= SHARED_BATCH as u64 {
            shared_events(&log, previous, span.head).await
        } else {
            None
        };
        tx.send_replace(Tip {
            head: span.head,
            first: span.first,
            recent,
        });
    }
}

/// Every event in `(after, head]`, if the store returns exactly those (log positions have
/// no gaps; anything else — a purge racing the read, say — and streams read for themselves).
async fn shared_events(log: &Log, after: u64, head: u64) -> Option<Arc<Recent>> {
    let want = usize::try_from(head - after).ok()?;
    let events = log.newer_all(after, want).await.ok()?;
    let contiguous = events.len() == want
        && events
            .iter()
            .enumerate()
            .all(|(i, e)| e.seq == after + 1 + i as u64);
    contiguous.then(|| Arc::new(Recent { after, events }))
}

/// Postgres `LISTEN audit_events` on a dedicated thread: each notification wakes the watcher.
#[cfg(feature = "postgres")]
mod listen {
    use super::*;

    /// The channel the Postgres store notifies on every append.
    const CHANNEL: &str = "audit_events";

    pub(super) fn spawn(url: String, wake: Arc<Notify>, stop: Arc<AtomicBool>) {
        let spawned = std::thread::Builder::new()
            .name("audit-http-listen".into())
            .spawn(move || run(&url, &wake, &stop));
        if let Err(e) = spawned {
            log_error(&format!(
                "cannot start the LISTEN thread ({e}); new events are found by polling only"
            ));
        }
    }

    fn run(url: &str, wake: &Notify, stop: &AtomicBool) {
        let mut backoff = Duration::from_millis(250);
        let mut reported = false;
        while !stop.load(Ordering::Relaxed) {
            match listen_once(url, wake, stop) {
                Ok(()) => return,
                Err(e) => {
                    if !reported {
                        reported = true;
                        log_error(&format!(
                            "LISTEN {CHANNEL} failed ({e}); polling until it reconnects"
                        ));
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    use postgres::fallible_iterator::FallibleIterator;

    /// Listens until `stop` (Ok) or a connection error (Err).
    fn listen_once(url: &str, wake: &Notify, stop: &AtomicBool) -> Result<(), postgres::Error> {
        let mut config: postgres::Config = url.parse()?;
        config.connect_timeout(Duration::from_secs(5));
        let mut client = config.connect(postgres::NoTls)?;
        client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
        // Anything may have been appended while not listening.
        wake.notify_one();
        while !stop.load(Ordering::Relaxed) {
            let mut notifications = client.notifications();
            let mut iter = notifications.timeout_iter(Duration::from_secs(1));
            while iter.next()?.is_some() {
                wake.notify_one();
            }
        }
        Ok(())
    }
}

#[cfg(not(feature = "postgres"))]
mod listen {
    use super::*;

    pub(super) fn spawn(_url: String, _wake: Arc<Notify>, _stop: Arc<AtomicBool>) {
        log_error(
            "this build of audit-http has no Postgres support (feature `postgres`); \
             new events are found by polling only",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_core::AuditEvent;

    fn stored(seq: u64) -> StoredEvent {
        StoredEvent {
            seq,
            hash: audit_core::chain::ChainHash::GENESIS,
            event: AuditEvent::builder("write").build(),
        }
    }

    #[test]
    fn shared_events_serve_only_positions_they_cover() {
        let tip = Tip {
            head: 13,
            first: 1,
            recent: Some(Arc::new(Recent {
                after: 10,
                events: vec![stored(11), stored(12), stored(13)],
            })),
        };
        let seqs = |p| {
            tip.events_after(p)
                .map(|e| e.iter().map(|e| e.seq).collect::<Vec<_>>())
        };
        assert_eq!(seqs(10), Some(vec![11, 12, 13]));
        assert_eq!(seqs(12), Some(vec![13]));
        assert_eq!(seqs(9), None, "behind what is shared: read the store");
        assert_eq!(seqs(13), None, "nothing new");
        assert_eq!(
            Tip {
                head: 13,
                first: 1,
                recent: None
            }
            .events_after(10),
            None
        );
    }
}
