//! When a failed registry request is retried and how long the scanner waits before it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bounds on the retries of one registry request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 turns retries off.
    pub retries: u32,
    /// Backoff before the first retry. Each further retry doubles it, up to `max_delay`.
    pub base_delay: Duration,
    /// Maximum single wait, from backoff or from a `Retry-After` header. A registry that
    /// requests a longer wait gets no retry.
    pub max_delay: Duration,
    /// Maximum total wait over all retries of one request.
    pub max_total_wait: Duration,
}

impl RetryPolicy {
    /// Returns the policy with `retries` retries and the default delays: 0.5 s doubling per
    /// retry, at most 30 s per wait and 60 s per request.
    pub fn with_retries(retries: u32) -> Self {
        RetryPolicy {
            retries,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_total_wait: Duration::from_secs(60),
        }
    }

    /// Returns the wait before retry number `retry` (0 for the first retry), given the
    /// registry's `Retry-After` and the time already waited for this request, or the reason
    /// why no retry follows.
    pub fn next_wait(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        waited: Duration,
    ) -> Result<Duration, String> {
        if retry >= self.retries {
            return Err(match self.retries {
                0 => "retries are off (COMPLIANCE_RETRIES=0)".to_string(),
                n => format!("gave up after {} attempts (COMPLIANCE_RETRIES={n})", n + 1),
            });
        }
        let wait = match retry_after {
            Some(requested) if requested > self.max_delay => {
                return Err(format!(
                    "the registry asked to retry after {} s (Retry-After), longer than the {} s \
                     the scanner waits",
                    requested.as_secs(),
                    self.max_delay.as_secs()
                ));
            }
            Some(requested) => requested,
            None => jittered(self.backoff(retry)),
        };
        if waited + wait > self.max_total_wait {
            return Err(format!(
                "gave up after {} attempts, because another wait would pass the limit of {} s \
                 of waiting per request",
                retry + 1,
                self.max_total_wait.as_secs()
            ));
        }
        Ok(wait)
    }

    /// Returns the backoff before retry number `retry` without jitter.
    fn backoff(&self, retry: u32) -> Duration {
        let factor = 1_u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Returns a random duration between half of `delay` and `delay` ("equal jitter"), so that
/// layers that failed together do not retry in lockstep.
fn jittered(delay: Duration) -> Duration {
    // RandomState's keys are random per process and per instance, which is enough for jitter.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    let fraction = (hasher.finish() >> 11) as f64 / (1_u64 << 53) as f64;
    delay / 2 + delay.mul_f64(fraction / 2.0)
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date (RFC 9110, section 10.2.3).
/// A date in the past gives zero. Returns `None` for a value in neither form.
// NOTE: only the IMF-fixdate form of an HTTP date is parsed ("Sun, 06 Nov 1994 08:49:37 GMT").
// The obsolete RFC 850 and asctime forms fall back to backoff.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // A number too large for u64 still means "later than any cap".
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds));
    }
    let date = parse_imf_fixdate(value)?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
fn parse_imf_fixdate(value: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = value.split(' ').collect();
    let [weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    if weekday.len() != 4 || !weekday.ends_with(',') || day.len() != 2 || year.len() != 4 {
        return None;
    }
    let day: u32 = parse_digits(day)?;
    let year: i64 = parse_digits(year)?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as u32 + 1;
    let clock: Vec<&str> = time.split(':').collect();
    let [hour, minute, second] = clock.as_slice() else {
        return None;
    };
    if [hour, minute, second].iter().any(|part| part.len() != 2) {
        return None;
    }
    let (hour, minute, second): (u64, u64, u64) = (
        parse_digits(hour)?,
        parse_digits(minute)?,
        parse_digits(second)?,
    );
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = u64::try_from(days).ok()? * 86_400 + hour * 3_600 + minute * 60 + second;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

fn parse_digits<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// Returns the number of days from 1970-01-01 to the given proleptic Gregorian date, by
/// Howard Hinnant's `days_from_civil` algorithm.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn retry_after_seconds_parsed() {
        assert_eq!(parse_retry_after("7", at(0)), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", at(0)), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_huge_number_saturates() {
        let parsed = parse_retry_after("99999999999999999999999", at(0));
        assert_eq!(parsed, Some(Duration::from_secs(u64::MAX)));
    }

    #[test]
    fn retry_after_http_date_parsed() {
        // 1994-11-06T08:49:37Z is 784111777 s after the epoch.
        let now = at(784_111_777 - 5);
        let parsed = parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now);
        assert_eq!(parsed, Some(Duration::from_secs(5)));
    }

    #[test]
    fn retry_after_past_date_is_zero() {
        let parsed = parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at(2_000_000_000));
        assert_eq!(parsed, Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_leap_year_date_parsed() {
        // 2024-02-29T00:00:00Z is 1709164800 s after the epoch.
        let parsed = parse_retry_after("Thu, 29 Feb 2024 00:00:00 GMT", at(1_709_164_800));
        assert_eq!(parsed, Some(Duration::ZERO));
        let parsed = parse_retry_after("Thu, 29 Feb 2024 00:00:10 GMT", at(1_709_164_800));
        assert_eq!(parsed, Some(Duration::from_secs(10)));
    }

    #[test]
    fn retry_after_invalid_values_rejected() {
        for value in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
        ] {
            assert_eq!(parse_retry_after(value, at(0)), None, "{value:?}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_max() {
        let policy = RetryPolicy::with_retries(10);
        assert_eq!(policy.backoff(0), Duration::from_millis(500));
        assert_eq!(policy.backoff(1), Duration::from_secs(1));
        assert_eq!(policy.backoff(3), Duration::from_secs(4));
        assert_eq!(policy.backoff(9), Duration::from_secs(30));
        assert_eq!(policy.backoff(40), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_between_half_and_full() {
        for _ in 0..1000 {
            let wait = jittered(Duration::from_secs(4));
            assert!(wait >= Duration::from_secs(2), "{wait:?}");
            assert!(wait <= Duration::from_secs(4), "{wait:?}");
        }
    }

    #[test]
    fn next_wait_stops_after_retries() {
        let policy = RetryPolicy::with_retries(2);
        assert!(policy.next_wait(0, None, Duration::ZERO).is_ok());
        assert!(policy.next_wait(1, None, Duration::ZERO).is_ok());
        let error = policy.next_wait(2, None, Duration::ZERO).unwrap_err();
        assert!(error.contains("3 attempts"), "{error}");
    }

    #[test]
    fn next_wait_zero_retries_explained() {
        let error = RetryPolicy::with_retries(0)
            .next_wait(0, None, Duration::ZERO)
            .unwrap_err();
        assert!(error.contains("COMPLIANCE_RETRIES=0"), "{error}");
    }

    #[test]
    fn next_wait_honours_retry_after() {
        let policy = RetryPolicy::with_retries(4);
        let wait = policy.next_wait(3, Some(Duration::from_secs(2)), Duration::ZERO);
        assert_eq!(wait, Ok(Duration::from_secs(2)));
    }

    #[test]
    fn next_wait_rejects_long_retry_after() {
        let policy = RetryPolicy::with_retries(4);
        let error = policy
            .next_wait(0, Some(Duration::from_secs(3600)), Duration::ZERO)
            .unwrap_err();
        assert!(error.contains("3600 s"), "{error}");
    }

    #[test]
    fn next_wait_bounded_in_total() {
        let policy = RetryPolicy::with_retries(4);
        let error = policy
            .next_wait(1, Some(Duration::from_secs(20)), Duration::from_secs(50))
            .unwrap_err();
        assert!(error.contains("2 attempts"), "{error}");
        assert!(error.contains("60 s"), "{error}");
    }
}
