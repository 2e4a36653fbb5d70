//! Throttle rates (DRF syntax) and the limiter arithmetic.
//!
//! The limiter is DRF's `SimpleRateThrottle`: an exact sliding log of request times per
//! `scope:identity`. It is a pure function of (history, rate, now), so the edge's Durable
//! Object only keeps the history, calls [`check`], and stores it back ([`encode_history`]).

use std::fmt;

/// The throttle scopes of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Anon,
    User,
    Auth,
    PasswordReset,
    /// The reset and activation routes per site: the client's IPv6 /48 (IPv4 /24).
    PasswordResetSite,
    /// The same per provider: the client's IPv6 /32 (IPv4 /16).
    PasswordResetProvider,
    /// The same for the whole service: one budget that bounds code guesses from everywhere.
    PasswordResetAll,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::Anon,
        Scope::User,
        Scope::Auth,
        Scope::PasswordReset,
        Scope::PasswordResetSite,
        Scope::PasswordResetProvider,
        Scope::PasswordResetAll,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Anon => "anon",
            Self::User => "user",
            Self::Auth => "auth",
            Self::PasswordReset => "password_reset",
            Self::PasswordResetSite => "password_reset_site",
            Self::PasswordResetProvider => "password_reset_provider",
            Self::PasswordResetAll => "password_reset_all",
        }
    }

    /// Whether a limiter failure must refuse the request (503) rather than let it through:
    /// the scopes that guard credentials and reset codes fail closed.
    pub fn fails_closed(self) -> bool {
        !matches!(self, Self::Anon | Self::User)
    }

    /// Whether a spent budget of this scope is news for the operator (logged): the nested reset
    /// budgets are shared by many clients, so spending one means an attack or a limit too low.
    pub fn shared_budget(self) -> bool {
        matches!(
            self,
            Self::PasswordResetSite | Self::PasswordResetProvider | Self::PasswordResetAll
        )
    }

    /// Whether isolates take leases of permits ([`crate::lease`]) instead of asking the
    /// limiter on every request: the high-volume scopes, whose limits are per day; the scopes
    /// that guard credentials and reset codes are checked exactly, one request at a time.
    pub fn leased(self) -> bool {
        !self.fails_closed()
    }
}

/// `requests` per `period_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub requests: u32,
    pub period_secs: u64,
}

/// Upper bound on `requests`, which bounds the stored history per key.
pub const MAX_REQUESTS_PER_PERIOD: u32 = 100_000;

impl Rate {
    /// DRF syntax `N/period`, where only the period's first letter counts (`s`, `m`, `h`, `d`),
    /// so `3/min`, `3/m` and `3/minute` are the same rate.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (num, period) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not of the form N/period"))?;
        let requests: u32 = num
            .trim()
            .parse()
            .map_err(|_| format!("{num:?} is not a whole number of requests"))?;
        if requests == 0 || requests > MAX_REQUESTS_PER_PERIOD {
            return Err(format!(
                "request count must be 1..={MAX_REQUESTS_PER_PERIOD}, got {requests}"
            ));
        }
        let period_secs = match period.trim().chars().next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3_600,
            Some('d') => 86_400,
            _ => {
                return Err(format!(
                    "{period:?} is not a period (sec, min, hour or day)"
                ))
            }
        };
        Ok(Self {
            requests,
            period_secs,
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period_secs {
            1 => "sec",
            60 => "min",
            3_600 => "hour",
            _ => "day",
        };
        write!(f, "{}/{unit}", self.requests)
    }
}

/// The rate of every scope. `anon` and `user` may be `none` (DRF's `None`: not throttled, so
/// no limiter call at all); the others guard credentials and reset codes and always have a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRates {
    pub anon: Option<Rate>,
    pub user: Option<Rate>,
    pub auth: Rate,
    pub password_reset: Rate,
    pub password_reset_site: Rate,
    pub password_reset_provider: Rate,
    pub password_reset_all: Rate,
}

pub const DEFAULT_RATES: &str = "anon=100/day,user=1000/day,auth=3/min,password_reset=3/hour,\
password_reset_site=30/hour,password_reset_provider=100/hour,password_reset_all=300/hour";

impl Default for ThrottleRates {
    fn default() -> Self {
        Self::parse(DEFAULT_RATES).expect("default rates parse")
    }
}

impl ThrottleRates {
    /// `scope=N/period` entries separated by commas; scopes not named keep their default;
    /// `anon=none` / `user=none` turn those scopes off.
    pub fn parse(s: &str) -> Result<Self, String> {
        let hourly = |requests| Rate {
            requests,
            period_secs: 3_600,
        };
        let mut rates = Self {
            anon: Some(Rate {
                requests: 100,
                period_secs: 86_400,
            }),
            user: Some(Rate {
                requests: 1_000,
                period_secs: 86_400,
            }),
            auth: Rate {
                requests: 3,
                period_secs: 60,
            },
            password_reset: hourly(3),
            password_reset_site: hourly(30),
            password_reset_provider: hourly(100),
            password_reset_all: hourly(300),
        };
        let mut seen = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, rate) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?} is not of the form scope=N/period"))?;
            let name = name.trim();
            let scope = Scope::ALL
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = Scope::ALL.iter().map(|s| s.name()).collect();
                    format!(
                        "unknown throttle scope {name:?} (expected one of {})",
                        names.join(", ")
                    )
                })?;
            if seen.contains(&scope) {
                return Err(format!("throttle scope {name:?} is given twice"));
            }
            seen.push(scope);
            let rate = if rate.trim().eq_ignore_ascii_case("none") {
                None
            } else {
                Some(Rate::parse(rate).map_err(|e| format!("scope {name}: {e}"))?)
            };
            match (scope, rate) {
                (Scope::Anon, rate) => rates.anon = rate,
                (Scope::User, rate) => rates.user = rate,
                (Scope::Auth, Some(rate)) => rates.auth = rate,
                (Scope::PasswordReset, Some(rate)) => rates.password_reset = rate,
                (Scope::PasswordResetSite, Some(rate)) => rates.password_reset_site = rate,
                (Scope::PasswordResetProvider, Some(rate)) => rates.password_reset_provider = rate,
                (Scope::PasswordResetAll, Some(rate)) => rates.password_reset_all = rate,
                (_, None) => {
                    return Err(format!(
                    "throttle scope {name:?} cannot be none: it guards credentials or reset codes"
                ))
                }
            }
        }
        Ok(rates)
    }

    /// The scope's rate; `None` when the scope is not throttled.
    pub fn get(&self, scope: Scope) -> Option<Rate> {
        match scope {
            Scope::Anon => self.anon,
            Scope::User => self.user,
            Scope::Auth => Some(self.auth),
            Scope::PasswordReset => Some(self.password_reset),
            Scope::PasswordResetSite => Some(self.password_reset_site),
            Scope::PasswordResetProvider => Some(self.password_reset_provider),
            Scope::PasswordResetAll => Some(self.password_reset_all),
        }
    }
}

/// The limiter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Refused; the client may retry after this many whole seconds (≥ 1).
    Throttled {
        retry_after_secs: u64,
    },
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait_ms: u64) -> u64 {
    wait_ms.div_ceil(1_000).max(1)
}

/// DRF's sliding log: `history` holds the times (ms, oldest first) of the allowed requests in
/// the current window. Entries that left the window are dropped; if `rate.requests` remain,
/// the request is refused until the oldest leaves, otherwise `now_ms` is recorded.
pub fn check(history: &mut Vec<u64>, rate: Rate, now_ms: u64) -> Decision {
    match take(history, rate, now_ms, |_| 1) {
        Ok(_) => Decision::Allowed,
        Err(wait_ms) => Decision::Throttled {
            retry_after_secs: retry_after_secs(wait_ms),
        },
    }
}

/// The sliding log's step for [`check`] (one request) and `lease::grant` (a batch): drops what
/// left the window; with `remaining` requests left in it, records `permits(remaining)` of them
/// at `now_ms` and returns how many, or, with none left, `Err` the milliseconds until the
/// oldest leaves.
pub(crate) fn take(
    history: &mut Vec<u64>,
    rate: Rate,
    now_ms: u64,
    permits: impl FnOnce(u32) -> u32,
) -> Result<u32, u64> {
    let window_ms = rate.period_secs * 1_000;
    history.retain(|&t| t.saturating_add(window_ms) > now_ms && t <= now_ms);
    let used = u32::try_from(history.len()).unwrap_or(u32::MAX);
    if used >= rate.requests {
        return Err(window_ms - (now_ms - history[0]));
    }
    let permits = permits(rate.requests - used);
    history.extend(std::iter::repeat_n(now_ms, permits as usize));
    Ok(permits)
}

/// When a key's stored history may be deleted: its clean-up alarm must fire no earlier than
/// one window after the newest allowed request, since until then that request still counts.
/// Given the alarm already scheduled (`None` if none is known) and a request allowed at
/// `now_ms`, returns the new alarm time if the alarm must move, else `None`. A moved alarm
/// gets an eighth of the window as slack, so a busy key moves it about eight times per
/// window (each move is a billed storage write) instead of on every request.
pub fn cleanup_alarm(scheduled_ms: Option<u64>, rate: Rate, now_ms: u64) -> Option<u64> {
    let window_ms = rate.period_secs * 1_000;
    let needed = now_ms + window_ms;
    match scheduled_ms {
        Some(at) if at >= needed => None,
        _ => Some(needed + window_ms / 8),
    }
}

/// The stored form of a history: each time as 8 little-endian bytes, oldest first. A byte
/// array crosses the Wasm boundary and the Durable Object's storage in one copy, where a list
/// of numbers is converted element by element (a busy key holds thousands of entries).
pub fn encode_history(history: &[u64]) -> Vec<u8> {
    history.iter().flat_map(|t| t.to_le_bytes()).collect()
}

/// Reads [`encode_history`]'s bytes; `None` if they are not a whole number of entries.
pub fn decode_history(bytes: &[u8]) -> Option<Vec<u64>> {
    if !bytes.len().is_multiple_of(8) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|entry| u64::from_le_bytes(entry.try_into().expect("chunks of 8 bytes")))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cleanup_alarm_never_falls_before_a_counted_request_leaves_the_window() {
        let rate = Rate {
            requests: 3,
            period_secs: 60,
        };
        // None scheduled: one window and an eighth after the request.
        assert_eq!(
            cleanup_alarm(None, rate, 1_000),
            Some(1_000 + 60_000 + 7_500)
        );
        // Far enough ahead: not moved (no storage write).
        assert_eq!(cleanup_alarm(Some(68_500), rate, 8_500), None);
        // A later request that the alarm would cut short moves it.
        assert_eq!(cleanup_alarm(Some(68_500), rate, 8_501), Some(76_001));
        // Over a busy window the alarm moves eight times (every 7.6 s), not once per request.
        let (mut at, mut moves) = (None, 0);
        for now in (0..60_000).step_by(100) {
            if let Some(next) = cleanup_alarm(at, rate, now) {
                assert!(next >= now + 60_000);
                at = Some(next);
                moves += 1;
            }
            assert!(at.unwrap() >= now + 60_000);
        }
        assert_eq!(moves, 8);
    }
    use proptest::prelude::*;

    #[test]
    fn defaults_are_the_documented_rates() {
        let r = ThrottleRates::default();
        assert_eq!(
            r.anon,
            Some(Rate {
                requests: 100,
                period_secs: 86_400
            })
        );
        assert_eq!(
            r.user,
            Some(Rate {
                requests: 1_000,
                period_secs: 86_400
            })
        );
        assert_eq!(
            r.auth,
            Rate {
                requests: 3,
                period_secs: 60
            }
        );
        assert_eq!(
            r.password_reset,
            Rate {
                requests: 3,
                period_secs: 3_600
            }
        );
    }

    #[test]
    fn overrides_keep_other_defaults() {
        let r = ThrottleRates::parse(" auth = 10/second , ").unwrap();
        assert_eq!(
            r.auth,
            Rate {
                requests: 10,
                period_secs: 1
            }
        );
        assert_eq!(r.anon, ThrottleRates::default().anon);
        assert_eq!(ThrottleRates::parse("").unwrap(), ThrottleRates::default());
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let err = |s: &str| ThrottleRates::parse(s).unwrap_err();
        assert!(err("burst=1/min").contains("unknown throttle scope \"burst\""));
        assert!(err("auth").contains("scope=N/period"));
        assert!(err("auth=3").contains("N/period"));
        assert!(err("auth=x/min").contains("whole number"));
        assert!(err("auth=0/min").contains("1..="));
        assert!(err("auth=3/week").contains("not a period"));
        assert!(err("auth=3/min,auth=4/min").contains("twice"));
        assert!(err("auth=-3/min").contains("whole number"));
        assert!(err("auth=none").contains("cannot be none"));
        assert!(err("password_reset=None").contains("cannot be none"));
    }

    #[test]
    fn anon_and_user_can_be_turned_off() {
        let r = ThrottleRates::parse("anon=none, user=NONE").unwrap();
        assert_eq!((r.get(Scope::Anon), r.get(Scope::User)), (None, None));
        assert_eq!(r.get(Scope::Auth), Some(ThrottleRates::default().auth));
        assert_eq!(
            r.get(Scope::PasswordReset),
            Some(ThrottleRates::default().password_reset)
        );
    }

    #[test]
    fn fourth_call_in_a_minute_is_throttled_with_retry_after() {
        let rate = Rate::parse("3/min").unwrap();
        let mut h = Vec::new();
        for t in [0, 10_000, 20_000] {
            assert_eq!(check(&mut h, rate, 1_000_000 + t), Decision::Allowed);
        }
        assert_eq!(
            check(&mut h, rate, 1_030_000),
            Decision::Throttled {
                retry_after_secs: 30
            }
        );
        assert_eq!(
            check(&mut h, rate, 1_059_999),
            Decision::Throttled {
                retry_after_secs: 1
            }
        );
        // The oldest leaves the window exactly one period after it was recorded.
        assert_eq!(check(&mut h, rate, 1_060_000), Decision::Allowed);
        assert_eq!(h, vec![1_010_000, 1_020_000, 1_060_000]);
    }

    #[test]
    fn refused_requests_are_not_recorded() {
        let rate = Rate::parse("1/sec").unwrap();
        let mut h = vec![];
        assert_eq!(check(&mut h, rate, 5_000), Decision::Allowed);
        assert_eq!(
            check(&mut h, rate, 5_500),
            Decision::Throttled {
                retry_after_secs: 1
            }
        );
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn stored_history_is_eight_little_endian_bytes_per_entry() {
        let history = vec![1, 0x0102_0304_0506_0708, u64::MAX];
        let bytes = encode_history(&history);
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[..8], &[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[8..16], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(decode_history(&bytes), Some(history));
        assert_eq!(decode_history(&[]), Some(vec![]));
        assert_eq!(
            decode_history(&bytes[..23]),
            None,
            "a torn entry is refused"
        );
    }

    #[test]
    fn scopes_fail_closed_where_credentials_are_at_stake() {
        assert!(Scope::Auth.fails_closed() && Scope::PasswordReset.fails_closed());
        assert!(!Scope::Anon.fails_closed() && !Scope::User.fails_closed());
        assert!(Scope::Anon.leased() && Scope::User.leased());
        assert!(!Scope::Auth.leased() && !Scope::PasswordReset.leased());
    }

    proptest! {
        #[test]
        fn stored_history_round_trips(history in proptest::collection::vec(any::<u64>(), 0..200)) {
            prop_assert_eq!(decode_history(&encode_history(&history)), Some(history));
        }

        /// In any window of one period, no more than `requests` calls are allowed, and the
        /// stored history never exceeds `requests`.
        #[test]
        fn never_more_than_n_per_window(n in 1u32..6, period in prop::sample::select(vec![1u64, 60]),
                                        gaps in proptest::collection::vec(0u64..3_000, 1..80)) {
            let rate = Rate { requests: n, period_secs: period };
            let mut h = Vec::new();
            let mut now = 10_000_000u64;
            let mut allowed = Vec::new();
            for gap in gaps {
                now += gap;
                match check(&mut h, rate, now) {
                    Decision::Allowed => allowed.push(now),
                    Decision::Throttled { retry_after_secs } => {
                        prop_assert!(retry_after_secs >= 1 && retry_after_secs <= period);
                    }
                }
                prop_assert!(h.len() <= n as usize);
            }
            for (i, &t) in allowed.iter().enumerate() {
                let in_window = allowed[i..].iter().take_while(|&&u| u < t + period * 1_000).count();
                prop_assert!(in_window <= n as usize);
            }
        }

        /// Waiting the advertised time always lets the next request through.
        #[test]
        fn retry_after_is_sufficient(n in 1u32..5, gaps in proptest::collection::vec(0u64..2_000, 1..30)) {
            let rate = Rate { requests: n, period_secs: 60 };
            let mut h = Vec::new();
            let mut now = 1_000_000u64;
            for gap in gaps {
                now += gap;
                if let Decision::Throttled { retry_after_secs } = check(&mut h, rate, now) {
                    let mut later = h.clone();
                    prop_assert_eq!(check(&mut later, rate, now + retry_after_secs * 1_000), Decision::Allowed);
                }
            }
        }

        #[test]
        fn rate_display_round_trips(n in 1u32..=MAX_REQUESTS_PER_PERIOD, p in prop::sample::select(vec!["sec", "min", "hour", "day"])) {
            let rate = Rate::parse(&format!("{n}/{p}")).unwrap();
            prop_assert_eq!(Rate::parse(&rate.to_string()).unwrap(), rate);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = ThrottleRates::parse(&s);
        }
    }
}
