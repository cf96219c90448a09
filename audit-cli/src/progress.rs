//! A one-line progress report on stderr, shown only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Progress of a long export or purge.
pub struct Progress {
    verb: &'static str,
    total: Option<u64>,
    enabled: bool,
    last_draw: Option<Instant>,
}

impl Progress {
    pub fn new(verb: &'static str, total: Option<u64>) -> Self {
        Progress {
            verb,
            total,
            enabled: Self::visible(),
            last_draw: None,
        }
    }

    /// Whether progress is shown at all (stderr is a terminal).
    pub fn visible() -> bool {
        std::io::stderr().is_terminal()
    }

    /// Redraws at most ten times a second.
    pub fn update(&mut self, done: u64) {
        if !self.enabled
            || self
                .last_draw
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last_draw = Some(Instant::now());
        self.draw(done);
    }

    fn draw(&self, done: u64) {
        let line = match self.total.filter(|t| *t > 0) {
            Some(total) => {
                let ratio = (done as f64 / total as f64).min(1.0);
                let filled = (ratio * 30.0) as usize;
                format!(
                    "\r[{}{}] {:>3.0}% {} {done}/{total} events",
                    "#".repeat(filled),
                    " ".repeat(30 - filled),
                    ratio * 100.0,
                    self.verb
                )
            }
            None => format!("\r{} {done} events", self.verb),
        };
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    /// Draws the final state and ends the line.
    pub fn finish(self, done: u64) {
        if self.enabled && self.last_draw.is_some() {
            self.draw(done);
            let _ = std::io::stderr().write_all(b"\n");
        }
    }
}
