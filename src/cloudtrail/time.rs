//! UTC instants and spans at one-second resolution, the resolution CloudTrail itself uses.
//!
//! CloudTrail writes `eventTime` as `YYYY-MM-DDTHH:MM:SSZ` and delivery times into object names
//! as `YYYYMMDDTHHmmZ`; both are parsed here without a calendar library, because all we ever need
//! is UTC arithmetic on whole seconds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant in UTC, as whole seconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A non-negative span of time in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("`{0}` is not a UTC time like 2023-07-10T11:54:00Z")]
    BadTimestamp(String),
    #[error("`{0}` is not a duration like \"10m\", \"2h\", \"7d\" or \"1h30m\"")]
    BadSpan(String),
}

// Days between 1970-01-01 and the given civil date (proleptic Gregorian), after H. Hinnant.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0i64, |n, b| n * 10 + i64::from(b - b'0')))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

impl Timestamp {
    pub const fn from_unix(seconds: i64) -> Self {
        Timestamp(seconds)
    }

    pub const fn unix(self) -> i64 {
        self.0
    }

    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Timestamp(since)
    }

    /// Builds an instant from calendar fields; `None` when any field is out of range.
    pub fn from_civil(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<Self> {
        let valid = (1..=9999).contains(&y)
            && (1..=12).contains(&mo)
            && (1..=days_in_month(y, mo)).contains(&d)
            && (0..24).contains(&h)
            && (0..60).contains(&mi)
            && (0..61).contains(&s);
        valid.then(|| Timestamp(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s))
    }

    /// Parses RFC 3339 as CloudTrail and people write it: `2023-07-10T11:54:00Z`, with optional
    /// fractional seconds and a `Z` or `±HH:MM` offset. A bare date means its midnight UTC.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        Self::parse_bytes(text.as_bytes()).ok_or_else(|| TimeError::BadTimestamp(text.to_string()))
    }

    fn parse_bytes(b: &[u8]) -> Option<Self> {
        let field = |r: std::ops::Range<usize>| b.get(r).and_then(digits);
        if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
            return Self::from_civil(field(0..4)?, field(5..7)?, field(8..10)?, 0, 0, 0);
        }
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let base = Self::from_civil(
            field(0..4)?,
            field(5..7)?,
            field(8..10)?,
            field(11..13)?,
            field(14..16)?,
            field(17..19)?,
        )?;
        let mut rest = &b[19..];
        if rest.first() == Some(&b'.') {
            let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            rest = &rest[1 + n..];
        }
        let offset = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let minutes = digits(&[*h1, *h2])? * 60 + digits(&[*m1, *m2])?;
                if *sign == b'+' {
                    minutes * 60
                } else {
                    -minutes * 60
                }
            }
            _ => return None,
        };
        Some(Timestamp(base.0 - offset))
    }

    /// Parses the compact delivery time of CloudTrail object names, `YYYYMMDDTHHmmZ`.
    pub fn parse_compact(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() != 14 || b[8] != b'T' || b[13] != b'Z' {
            return None;
        }
        let f = |r: std::ops::Range<usize>| digits(&b[r]);
        Self::from_civil(f(0..4)?, f(4..6)?, f(6..8)?, f(9..11)?, f(11..13)?, 0)
    }

    /// `(year, month, day)` of this instant in UTC.
    pub fn date(self) -> (i64, i64, i64) {
        civil_from_days(self.0.div_euclid(86_400))
    }

    /// Midnight UTC of this instant's day.
    pub fn day_start(self) -> Self {
        Timestamp(self.0 - self.0.rem_euclid(86_400))
    }

    /// This instant rounded down to a whole multiple of `span` since the epoch.
    pub fn floor_to(self, span: Span) -> Self {
        if span.0 <= 0 {
            return self;
        }
        Timestamp(self.0 - self.0.rem_euclid(span.0))
    }

    pub fn compact(self) -> String {
        let (y, m, d) = self.date();
        let secs = self.0.rem_euclid(86_400);
        format!(
            "{y:04}{m:02}{d:02}T{:02}{:02}Z",
            secs / 3600,
            secs % 3600 / 60
        )
    }

    pub fn saturating_add(self, span: Span) -> Self {
        Timestamp(self.0.saturating_add(span.0))
    }

    pub fn saturating_sub(self, span: Span) -> Self {
        Timestamp(self.0.saturating_sub(span.0))
    }

    /// The span from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Span {
        Span((self.0 - earlier.0).max(0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.date();
        let secs = self.0.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }
}

impl FromStr for Timestamp {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Span {
    pub const ZERO: Span = Span(0);

    pub const fn seconds(n: i64) -> Self {
        Span(n)
    }
    pub const fn minutes(n: i64) -> Self {
        Span(n * 60)
    }
    pub const fn hours(n: i64) -> Self {
        Span(n * 3600)
    }
    pub const fn days(n: i64) -> Self {
        Span(n * 86_400)
    }
    pub const fn as_seconds(self) -> i64 {
        self.0
    }

    /// Parses `90s`, `10m`, `2h`, `7d`, `2w` and sums like `1h30m`.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let bad = || TimeError::BadSpan(text.to_string());
        let t = text.trim();
        if t.is_empty() {
            return Err(bad());
        }
        let mut total: i64 = 0;
        let mut number: Option<i64> = None;
        for c in t.chars() {
            if let Some(d) = c.to_digit(10) {
                let n = number.unwrap_or(0);
                number = Some(
                    n.checked_mul(10)
                        .and_then(|n| n.checked_add(i64::from(d)))
                        .ok_or_else(bad)?,
                );
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                _ => return Err(bad()),
            };
            let n = number.take().ok_or_else(bad)?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
        }
        if number.is_some() {
            return Err(bad());
        }
        Ok(Span(total))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        match s {
            0 => write!(f, "0s"),
            _ if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            _ if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            _ if s % 60 == 0 => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

impl FromStr for Span {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Span::parse(s)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Span::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_time_round_trips() {
        let t = Timestamp::parse("2023-07-10T11:54:42Z").unwrap();
        assert_eq!(t.to_string(), "2023-07-10T11:54:42Z");
        assert_eq!(t.unix(), 1_688_990_082);
    }

    #[test]
    fn fractions_offsets_and_dates_parse() {
        let z = Timestamp::parse("2024-02-29T23:00:00Z").unwrap();
        assert_eq!(Timestamp::parse("2024-02-29T23:00:00.123Z").unwrap(), z);
        assert_eq!(Timestamp::parse("2024-03-01T01:00:00+02:00").unwrap(), z);
        assert_eq!(
            Timestamp::parse("2024-02-29").unwrap().to_string(),
            "2024-02-29T00:00:00Z"
        );
    }

    #[test]
    fn impossible_dates_are_rejected() {
        for bad in [
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-07-10T24:00:00Z",
            "x",
            "",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn compact_delivery_time_parses() {
        let t = Timestamp::parse_compact("20230710T1145Z").unwrap();
        assert_eq!(t.to_string(), "2023-07-10T11:45:00Z");
        assert_eq!(t.compact(), "20230710T1145Z");
        assert!(Timestamp::parse_compact("20230710T1160Z").is_none());
    }

    #[test]
    fn spans_parse_and_print() {
        assert_eq!(Span::parse("1h30m").unwrap(), Span::minutes(90));
        assert_eq!(Span::parse("7d").unwrap().to_string(), "7d");
        assert_eq!(Span::parse("0s").unwrap(), Span::ZERO);
        for bad in ["", "10", "m", "10x", "99999999999999999999d"] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn civil_conversion_is_inverse_over_centuries() {
        for day in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }
}
