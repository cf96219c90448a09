//! How long, and how often, a batch that failed with a retryable error is written again:
//! exponential backoff with jitter, within a total time budget.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

/// How a backend's failed batch is retried when its error is
/// [retryable](crate::BackendError::retryable). Set it with
/// [`AuditorBuilder::retry`](super::AuditorBuilder::retry).
///
/// The first retry comes after about `initial_delay`; each next pause doubles, up to
/// `max_delay`, and each is jittered (a random point in its upper half) so that many
/// processes that lost one database do not all come back at once. Once `max_elapsed` has
/// passed since the first failure, the batch is counted as failed.
///
/// ```
/// use std::time::Duration;
/// use audit_core::RetryPolicy;
///
/// assert_eq!(RetryPolicy::default().max_elapsed, Duration::from_secs(30));
/// let quick = RetryPolicy {
///     initial_delay: Duration::from_millis(10),
///     ..RetryPolicy::new(Duration::from_secs(2))
/// };
/// assert_eq!(quick.max_delay, Duration::from_secs(5));
/// assert_eq!(RetryPolicy::none().max_elapsed, Duration::ZERO);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How long after the first failure a batch is still retried.
    pub max_elapsed: Duration,
    /// The pause before the first retry (before jitter).
    pub initial_delay: Duration,
    /// The longest pause between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Up to 30 s, starting at 100 ms, pauses of at most 5 s.
    fn default() -> Self {
        RetryPolicy::new(Duration::from_secs(30))
    }
}

impl RetryPolicy {
    /// Retries for up to `max_elapsed` after the first failure, starting at 100 ms, with
    /// pauses of at most 5 s.
    pub const fn new(max_elapsed: Duration) -> Self {
        RetryPolicy {
            max_elapsed,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }

    /// Never retries: a failed batch is counted as failed at once.
    pub const fn none() -> Self {
        RetryPolicy::new(Duration::ZERO)
    }

    /// The pauses of one batch's retries, starting now (at its first failure).
    pub(super) fn start(&self) -> Backoff {
        Backoff {
            policy: *self,
            started: Instant::now(),
            next: self.initial_delay,
            rng: seed(),
        }
    }
}

/// The pauses between the attempts of one batch.
pub(super) struct Backoff {
    policy: RetryPolicy,
    started: Instant,
    /// The next pause, before jitter.
    next: Duration,
    rng: u64,
}

impl Backoff {
    /// The pause before the next attempt, or `None` when the budget is spent. The last pause
    /// is cut so that the last attempt happens within the budget.
    pub(super) fn next_delay(&mut self) -> Option<Duration> {
        let left = self
            .policy
            .max_elapsed
            .checked_sub(self.started.elapsed())
            .filter(|left| !left.is_zero())?;
        let base = self.next.min(self.policy.max_delay);
        self.next = base.saturating_mul(2);
        let half = base / 2;
        let jitter = half.mul_f64(self.random_fraction());
        Some((half + jitter).min(left))
    }

    /// A number in `[0, 1)`, from an xorshift generator: jitter needs spread, not quality.
    fn random_fraction(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A seed that differs between processes and threads (std's hash keys are random).
fn seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x9E37_79B9_7F4A_7C15);
    hasher.finish() | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_with_jitter_up_to_the_cap() {
        let policy = RetryPolicy {
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::new(Duration::from_secs(3600))
        };
        let mut backoff = policy.start();
        let pauses: Vec<Duration> = (0..8).map(|_| backoff.next_delay().unwrap()).collect();
        let bases = [100, 200, 400, 800, 1000, 1000, 1000, 1000];
        for (pause, base) in pauses.iter().zip(bases) {
            let base = Duration::from_millis(base);
            assert!(
                *pause >= base / 2 && *pause <= base,
                "{pause:?} for {base:?}"
            );
        }
        // Jittered: not all the capped pauses are equal.
        assert!(pauses[4..].windows(2).any(|w| w[0] != w[1]), "{pauses:?}");
    }

    #[test]
    fn the_budget_bounds_the_pauses() {
        assert_eq!(RetryPolicy::none().start().next_delay(), None);
        let mut backoff = RetryPolicy {
            initial_delay: Duration::from_secs(10),
            ..RetryPolicy::new(Duration::from_millis(50))
        }
        .start();
        let pause = backoff.next_delay().unwrap();
        assert!(pause <= Duration::from_millis(50), "{pause:?}");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(backoff.next_delay(), None);
    }
}
