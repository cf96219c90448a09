//! [`Follower`]: one live stream's walk along the log, shared by the SSE and WebSocket
//! endpoints.
//!
//! A follower holds a log position and hands out, in commit order, every event after it
//! that its (scoped) filter selects. It never buffers more than one store read
//! ([`FOLLOW_BATCH`] events): it reads only when its consumer asks for the next event, so a
//! client that stops reading stops the reads, and when it reads again it continues from the
//! store where it left off — nothing is dropped and nothing piles up in memory.
//!
//! Positions come from the store and have no gaps, so "everything after position p" is
//! exact: a reconnect with the last position seen gets exactly what it missed. When that
//! position is no longer in the store (purged), or lies beyond its head (a different or
//! recreated store), the follower says so with a [`Item::Reset`] and continues from the
//! head: the client should reload its first page.
//!
//! [`Follower::next`] is cancel-safe: its position moves only once a read has returned, so
//! it can sit in a `select!` with other work.

use std::collections::VecDeque;

use tokio::sync::{OwnedSemaphorePermit, watch};

use audit_core::query::Filter;

use audit_core::store::StoredEvent;

use crate::log::{FOLLOW_BATCH, Log, LogError};
use crate::watcher::Tip;

/// What a stream sends next.
#[derive(Debug)]
pub(crate) enum Item {
    /// An event.
    Event(Box<StoredEvent>),
    /// The requested position is gone; the stream continues after `head`.
    Reset {
        /// The position the client asked to resume after.
        requested: u64,
        /// The lowest position still stored.
        first: u64,
        /// Where the stream continues from.
        head: u64,
    },
    /// The store failed; the stream ends after this.
    Interrupted(String),
}

/// One stream's position in the log.
pub(crate) struct Follower {
    log: Log,
    filter: Filter,
    position: u64,
    pending: VecDeque<StoredEvent>,
    reset: Option<Item>,
    tips: watch::Receiver<Tip>,
    closing: watch::Receiver<bool>,
    finished: bool,
    _permit: OwnedSemaphorePermit,
}

impl Follower {
    /// Starts after `resume` (a position the client saw), or at the head when `None`.
    pub(crate) async fn start(
        log: Log,
        filter: Filter,
        resume: Option<u64>,
        tips: watch::Receiver<Tip>,
        closing: watch::Receiver<bool>,
        permit: OwnedSemaphorePermit,
    ) -> Result<Follower, LogError> {
        let span = log.head().await?;
        let (position, reset) = match resume {
            None => (span.head, None),
            Some(after) if after > span.head || span.first > after.saturating_add(1) => (
                span.head,
                Some(Item::Reset {
                    requested: after,
                    first: span.first,
                    head: span.head,
                }),
            ),
            Some(after) => (after, None),
        };
        Ok(Follower {
            log,
            filter,
            position,
            pending: VecDeque::new(),
            reset,
            tips,
            closing,
            finished: false,
            _permit: permit,
        })
    }

    /// The position of the last event handed out (or skipped as not matching).
    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    /// The next item; `None` when the server is closing (or the stream has failed).
    pub(crate) async fn next(&mut self) -> Option<Item> {
        if self.finished || *self.closing.borrow() {
            return None;
        }
        if let Some(reset) = self.reset.take() {
            return Some(reset);
        }
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Item::Event(Box::new(event)));
            }
            let tip = self.tips.borrow_and_update().clone();
            if tip.head < self.position {
                // Either the watcher's tip is older than this stream's start, or the store
                // went backwards (replaced, or restored from a backup): ask the store.
                match self.log.head().await {
                    Ok(span) if span.head < self.position => {
                        let requested = self.position;
                        self.position = span.head;
                        return Some(Item::Reset {
                            requested,
                            first: span.first,
                            head: span.head,
                        });
                    }
                    Ok(_) => {}
                    Err(e) => return Some(self.interrupted(e)),
                }
            }
            if tip.head > self.position {
                if let Some(shared) = tip.events_after(self.position) {
                    self.pending.extend(
                        shared
                            .iter()
                            .filter(|e| self.filter.matches(e, None))
                            .cloned(),
                    );
                    self.position = tip.head;
                    continue;
                }
                match self
                    .log
                    .newer(&self.filter, Some(self.position), FOLLOW_BATCH)
                    .await
                {
                    Ok(batch) => {
                        let last = batch.last().map(|e| e.seq);
                        // A short read saw everything up to at least `tip.head`: positions
                        // up to it are committed, so skipping the non-matching ones is safe.
                        self.position = if batch.len() < FOLLOW_BATCH {
                            last.unwrap_or(0).max(tip.head)
                        } else {
                            last.unwrap_or(self.position)
                        };
                        self.pending.extend(batch);
                        continue;
                    }
                    Err(e) => return Some(self.interrupted(e)),
                }
            }
            self.wait().await?;
        }
    }

    fn interrupted(&mut self, e: LogError) -> Item {
        self.finished = true;
        Item::Interrupted(crate::error::ApiError::from(e).message().to_owned())
    }

    /// Waits for the watcher's next tip; `None` when the server is closing.
    async fn wait(&mut self) -> Option<()> {
        tokio::select! {
                changed = self.tips.changed() => {
                    // An error: the watcher is gone, the server is shutting down.
                    changed.ok()
                }
                _ = self.closing.wait_for(|c| *c) => None,
        }
    }
}
