//! Throttle leases for the high-volume scopes (`anon`, `user`): a Worker isolate asks a key's
//! `RateLimiter` for a batch of permits at once and spends them locally, so most requests make
//! no Durable Object call; a refusal is remembered in the isolate until its `Retry-After`.
//!
//! The object counts a lease's permits as requests made when it grants them ([`grant`]), so
//! grants alone never exceed the rate in any window. Admissions can: a permit is spent after it
//! was granted, so a window may hold requests admitted with permits granted before it began.
//! Those come from leases an isolate still held at the window's start; an isolate takes a new
//! lease only once its last one is spent or expired, so it holds at most one lease with permits
//! left. Hence, in any window:
//!
//!   admitted ≤ rate + isolates × [`MAX_LEASE`]
//!
//! and fewer where little was left when the leases were granted ([`lease_size`]). The test
//! `several_isolates_never_admit_more_than_the_bound` drives several isolates against one
//! object. `auth` and `password_reset` keep the exact per-request check
//! ([`crate::throttle::check`]).

use std::collections::HashMap;

use crate::throttle::Rate;

/// The most permits one lease carries.
pub const MAX_LEASE: u32 = 32;

/// How many isolate-local entries (leases and remembered refusals) one isolate keeps; past
/// that they are all dropped, which costs only Durable Object calls (unspent permits are lost,
/// i.e. the isolate admits less, never more).
pub const MAX_HELD_KEYS: usize = 4_096;

/// The permits of a lease when `remaining` requests are left in the window: a 32nd of what is
/// left, at least 1 and at most [`MAX_LEASE`]. Small when little is left, so the last requests
/// of a window are counted one by one, as without leases.
pub fn lease_size(remaining: u32) -> u32 {
    (remaining / 32).clamp(1, MAX_LEASE)
}

/// How long an isolate may spend a lease: an eighth of the window, at most a minute. Permits
/// left when it ends are dropped (they were counted: the key is throttled a little early).
pub fn lease_ttl_ms(rate: Rate) -> u64 {
    (rate.period_secs * 1_000 / 8).min(60_000)
}

/// The object's side: like [`crate::throttle::check`], but records [`lease_size`] permits at
/// `now_ms` at once. `Ok(permits)`, or `Err(ms)` until the oldest counted request leaves the
/// window (to the millisecond, so the isolate does not remember the refusal past it).
pub fn grant(history: &mut Vec<u64>, rate: Rate, now_ms: u64) -> Result<u32, u64> {
    crate::throttle::take(history, rate, now_ms, lease_size)
}

/// What the isolate knows about a key without asking its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// A permit of the isolate's lease was spent on this request.
    Allowed,
    /// The object refused this key until then: retry after this many seconds.
    Throttled(u64),
    /// Nothing held: ask the object (then record its answer with [`Leases::granted`] or
    /// [`Leases::refused`]).
    Ask,
}

#[derive(Debug, Clone, Copy)]
enum Held {
    Permits { left: u32, until_ms: u64 },
    Refused { until_ms: u64 },
}

/// The isolate's side: the leases and refusals it holds, per `scope:identity` key.
#[derive(Debug, Default)]
pub struct Leases {
    held: HashMap<String, Held>,
}

impl Leases {
    /// Spends a permit of `key`'s lease, or answers a remembered refusal, or says to ask.
    pub fn spend(&mut self, key: &str, now_ms: u64) -> Local {
        let Some(held) = self.held.get_mut(key) else {
            return Local::Ask;
        };
        match *held {
            Held::Permits { left, until_ms } if left > 0 && now_ms < until_ms => {
                *held = Held::Permits {
                    left: left - 1,
                    until_ms,
                };
                Local::Allowed
            }
            Held::Refused { until_ms } if now_ms < until_ms => {
                Local::Throttled(crate::throttle::retry_after_secs(until_ms - now_ms))
            }
            _ => {
                self.held.remove(key);
                Local::Ask
            }
        }
    }

    /// The object granted `permits` for `key` at `now_ms`; one of them is this request's.
    pub fn granted(&mut self, key: &str, permits: u32, rate: Rate, now_ms: u64) {
        let left = permits.saturating_sub(1);
        if left == 0 {
            self.held.remove(key);
            return;
        }
        self.hold(
            key,
            Held::Permits {
                left,
                until_ms: now_ms + lease_ttl_ms(rate),
            },
        );
    }

    /// The object refused `key` at `now_ms` for `wait_ms`.
    pub fn refused(&mut self, key: &str, wait_ms: u64, now_ms: u64) {
        self.hold(
            key,
            Held::Refused {
                until_ms: now_ms + wait_ms,
            },
        );
    }

    fn hold(&mut self, key: &str, held: Held) {
        if self.held.len() >= MAX_HELD_KEYS && !self.held.contains_key(key) {
            self.held.clear();
        }
        self.held.insert(key.to_owned(), held);
    }

    /// Keys with something held (for tests and the bound's proof).
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throttle::{check, Decision};
    use proptest::prelude::*;

    const PER_MIN: Rate = Rate {
        requests: 1_000,
        period_secs: 60,
    };

    #[test]
    fn leases_shrink_as_the_window_fills() {
        assert_eq!(lease_size(100_000), MAX_LEASE);
        assert_eq!(lease_size(1_000), 31);
        assert_eq!(lease_size(100), 3);
        assert_eq!(lease_size(31), 1);
        assert_eq!(lease_size(1), 1);
        let mut history = Vec::new();
        let mut granted = 0;
        while let Ok(permits) = grant(&mut history, PER_MIN, 5) {
            granted += permits;
        }
        // Never more than the rate in one window, and the last ones one at a time.
        assert_eq!(granted, PER_MIN.requests);
        assert_eq!(history.len() as u32, PER_MIN.requests);
        assert_eq!(grant(&mut history, PER_MIN, 60_004), Err(1));
        assert!(grant(&mut history, PER_MIN, 60_005).is_ok());
    }

    #[test]
    fn times_at_the_ends_of_the_clock_do_not_overflow() {
        // Found by cargo-fuzz (on the exact check, which shares the window test).
        let mut history = vec![0, u64::MAX];
        assert!(grant(&mut history, PER_MIN, 5).is_ok());
        let mut history = vec![0, u64::MAX];
        assert_eq!(check(&mut history, PER_MIN, 5), Decision::Allowed);
        assert!(grant(&mut Vec::new(), PER_MIN, u64::MAX).is_ok());
    }

    #[test]
    fn an_isolate_spends_its_lease_then_asks_and_remembers_a_refusal() {
        let mut leases = Leases::default();
        assert_eq!(leases.spend("anon:a", 0), Local::Ask);
        leases.granted("anon:a", 3, PER_MIN, 0);
        assert_eq!(leases.spend("anon:a", 1), Local::Allowed);
        assert_eq!(leases.spend("anon:a", 2), Local::Allowed);
        assert_eq!(leases.spend("anon:a", 3), Local::Ask);
        // Other keys are their own.
        assert_eq!(leases.spend("anon:b", 3), Local::Ask);
        // A lease ends with its time (an eighth of the window, at most a minute).
        leases.granted("anon:a", 5, PER_MIN, 10);
        assert_eq!(leases.spend("anon:a", 10 + 7_499), Local::Allowed);
        assert_eq!(leases.spend("anon:a", 10 + 7_500), Local::Ask);
        // A refusal is answered locally until its Retry-After, then the object is asked.
        leases.refused("anon:a", 1_500, 100);
        assert_eq!(leases.spend("anon:a", 100), Local::Throttled(2));
        assert_eq!(leases.spend("anon:a", 1_101), Local::Throttled(1));
        assert_eq!(leases.spend("anon:a", 1_600), Local::Ask);
        assert!(leases.is_empty());
    }

    #[test]
    fn a_full_table_is_emptied_rather_than_grown() {
        let mut leases = Leases::default();
        for i in 0..MAX_HELD_KEYS {
            leases.granted(&format!("anon:{i}"), 2, PER_MIN, 0);
        }
        assert_eq!(leases.len(), MAX_HELD_KEYS);
        leases.granted("anon:new", 2, PER_MIN, 0);
        assert_eq!(leases.len(), 1);
        assert_eq!(leases.spend("anon:0", 1), Local::Ask);
        assert_eq!(leases.spend("anon:new", 1), Local::Allowed);
    }

    /// Admissions in every window `(t - W, t]` ending at an admission.
    fn max_in_any_window(admitted: &[u64], window_ms: u64) -> usize {
        let mut sorted = admitted.to_vec();
        sorted.sort_unstable();
        let mut start = 0;
        let mut most = 0;
        for end in 0..sorted.len() {
            while sorted[start] + window_ms <= sorted[end] {
                start += 1;
            }
            most = most.max(end - start + 1);
        }
        most
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Several isolates, one object, requests arriving at random isolates at random gaps
        /// over several windows: the admissions in any window never exceed the rate plus
        /// isolates × MAX_LEASE, and the object's own grants never exceed the rate.
        #[test]
        fn several_isolates_never_admit_more_than_the_bound(
            isolates in 1usize..12,
            requests in 1u32..400,
            period_secs in 1u64..5,
            arrivals in proptest::collection::vec((0usize..12, 0u64..40), 200..3_000),
        ) {
            let rate = Rate { requests, period_secs };
            let mut object = Vec::new();
            let mut grants = Vec::new();
            let mut caches: Vec<Leases> = (0..isolates).map(|_| Leases::default()).collect();
            let (mut now, mut admitted) = (0u64, Vec::new());
            for (isolate, gap) in arrivals {
                now += gap;
                let cache = &mut caches[isolate % isolates];
                let allowed = match cache.spend("anon:k", now) {
                    Local::Allowed => true,
                    Local::Throttled(_) => false,
                    Local::Ask => match grant(&mut object, rate, now) {
                        Ok(permits) => {
                            cache.granted("anon:k", permits, rate, now);
                            grants.extend(std::iter::repeat_n(now, permits as usize));
                            true
                        }
                        Err(wait_ms) => {
                            cache.refused("anon:k", wait_ms, now);
                            false
                        }
                    },
                };
                if allowed {
                    admitted.push(now);
                }
            }
            let window_ms = period_secs * 1_000;
            prop_assert!(max_in_any_window(&grants, window_ms) <= requests as usize);
            let bound = requests as usize + isolates * MAX_LEASE as usize;
            let most = max_in_any_window(&admitted, window_ms);
            prop_assert!(most <= bound, "{most} admitted in one window, bound {bound}");
        }

        /// One isolate against the exact check: a remembered refusal never refuses a request
        /// the exact check would have allowed at that moment.
        #[test]
        fn a_remembered_refusal_ends_when_the_exact_check_would_allow_again(
            requests in 1u32..50,
            gaps in proptest::collection::vec(0u64..300, 50..600),
        ) {
            let rate = Rate { requests, period_secs: 2 };
            let mut object = Vec::new();
            let mut leases = Leases::default();
            let mut now = 0;
            for gap in gaps {
                now += gap;
                match leases.spend("anon:k", now) {
                    Local::Allowed => {}
                    Local::Throttled(_) => {
                        // The object's record (every permit granted counts) still refuses.
                        let mut exact = object.clone();
                        prop_assert!(check(&mut exact, rate, now) != Decision::Allowed);
                    }
                    Local::Ask => match grant(&mut object, rate, now) {
                        Ok(permits) => leases.granted("anon:k", permits, rate, now),
                        Err(wait_ms) => leases.refused("anon:k", wait_ms, now),
                    },
                }
            }
        }
    }
}
