//! Exponential backoff with full jitter: the n-th retry waits a random time between 0
//! and min(max, base * 2^n); a server's Retry-After is a floor. No attempt limit.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        use std::hash::{BuildHasher, Hasher};
        // Seeded from std's randomly keyed hasher: jitter needs no cryptographic quality,
        // only that devices do not retry in step.
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            | 1;
        Backoff {
            base,
            max: max.max(base),
            attempt: 0,
            rng: seed,
        }
    }

    /// The delay before the next attempt, and counts the attempt.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let jittered = ceiling.mul_f64(self.random_fraction());
        match retry_after {
            Some(floor) => jittered.max(floor),
            None => jittered,
        }
    }

    /// Back to the first step: after a success, or when connectivity returns.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    fn random_fraction(&mut self) -> f64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_a_doubling_capped_ceiling() {
        let mut b = Backoff::new(Duration::from_secs(2), Duration::from_secs(300));
        let mut maxima = Vec::new();
        for attempt in 0..12u32 {
            let ceiling = Duration::from_secs(2 * (1u64 << attempt)).min(Duration::from_secs(300));
            let d = b.next_delay(None);
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
            maxima.push(ceiling);
        }
        assert_eq!(*maxima.last().unwrap(), Duration::from_secs(300));
        b.reset();
        assert!(b.next_delay(None) <= Duration::from_secs(2));
    }

    #[test]
    fn jitter_spreads_delays_and_retry_after_is_a_floor() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
        let delays: Vec<Duration> = (0..200).map(|_| b.next_delay(None)).collect();
        let low = delays
            .iter()
            .filter(|d| **d < Duration::from_secs(5))
            .count();
        assert!(low > 50 && low < 150, "{low} of 200 below half");
        assert!(b.next_delay(Some(Duration::from_secs(60))) >= Duration::from_secs(60));
    }
}
