//! How long to wait before the next attempt to reach Redis: doubling from a short first wait
//! to a cap, each wait drawn at random from its upper half, so that nodes cut off together do
//! not all come back at the same instant.

use std::time::Duration;

/// The waits of one run of failed attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    next: Duration,
}

impl Backoff {
    /// Waits from `first` doubling to `cap`.
    pub fn new(first: Duration, cap: Duration) -> Self {
        Backoff {
            first,
            cap,
            next: first,
        }
    }

    /// The wait before the next attempt: between half and all of the current step, which then
    /// doubles (up to the cap).
    pub fn next_wait(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.cap);
        let half = step / 2;
        let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_micros(super::random_u64() % spread)
    }

    /// An attempt succeeded: the next failure starts again from the first wait.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_with_jitter_and_reset() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut steps = Vec::new();
        for _ in 0..8 {
            steps.push(backoff.next_wait());
        }
        for (wait, step) in steps
            .iter()
            .zip([100u64, 200, 400, 800, 1600, 2000, 2000, 2000])
        {
            let step = Duration::from_millis(step);
            assert!(*wait >= step / 2 && *wait <= step, "{wait:?} for {step:?}");
        }
        backoff.reset();
        assert!(backoff.next_wait() <= Duration::from_millis(100));
        // Jitter: a hundred first waits are not all the same.
        let waits: std::collections::HashSet<Duration> = (0..100)
            .map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).next_wait())
            .collect();
        assert!(waits.len() > 50, "{}", waits.len());
    }
}
