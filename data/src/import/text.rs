//! Byte-level line parsing shared by the text importers: no per-line allocation, errors that say which
//! field is wrong and why (the caller adds file and line).

use std::borrow::Cow;

use chrono::{DateTime, Datelike, NaiveDate};

/// Character encoding of a text input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextEncoding {
    /// UTF-8; invalid bytes are an error naming the line.
    #[default]
    Utf8,
    /// ISO-8859-1 / Windows-1252 (MovieLens files); every byte decodes.
    Latin1,
}

/// Iterates `(1-based line number, line)` without the trailing `\n` / `\r\n`; skips blank lines.
pub(crate) fn lines(buf: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    buf.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.strip_suffix(b"\r").unwrap_or(l)))
        .filter(|(_, l)| !l.iter().all(|b| b.is_ascii_whitespace()))
}

/// Splits `line` on `sep` into `out`, returning the number of fields (which may exceed `out.len()`;
/// extra fields are counted but not stored).
pub(crate) fn split_fields<'a>(line: &'a [u8], sep: &[u8], out: &mut [&'a [u8]]) -> usize {
    let mut n = 0;
    let mut rest = line;
    loop {
        let pos = if sep.len() == 1 {
            rest.iter().position(|&b| b == sep[0])
        } else {
            rest.windows(sep.len()).position(|w| w == sep)
        };
        let (field, next) = match pos {
            Some(p) => (&rest[..p], Some(&rest[p + sep.len()..])),
            None => (rest, None),
        };
        if n < out.len() {
            out[n] = field;
        }
        n += 1;
        match next {
            Some(r) => rest = r,
            None => return n,
        }
    }
}

/// Decodes one field's bytes as text.
pub(crate) fn decode<'a>(bytes: &'a [u8], enc: TextEncoding) -> Result<Cow<'a, str>, String> {
    match enc {
        TextEncoding::Utf8 => std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|e| {
            format!(
                "invalid UTF-8 at byte {} (if the file is Latin-1, pass --encoding latin-1)",
                e.valid_up_to()
            )
        }),
        TextEncoding::Latin1 => Ok(encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes).0),
    }
}

fn show(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    if s.chars().count() > 40 {
        format!("{:?}…", s.chars().take(40).collect::<String>())
    } else {
        format!("{s:?}")
    }
}

/// An id field: trimmed, non-empty, valid UTF-8 (ids in MovieLens are ASCII digits).
pub(crate) fn id_field<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, String> {
    let t = bytes.trim_ascii();
    if t.is_empty() {
        return Err(format!("{what} is empty"));
    }
    let s = std::str::from_utf8(t).map_err(|_| format!("{what} {} is not valid UTF-8", show(t)))?;
    match crate::id_problem(s) {
        Some(m) => Err(format!("{what}: {m}")),
        None => Ok(s),
    }
}

/// A numeric field parsed as f32 (finite).
pub(crate) fn f32_field(bytes: &[u8], what: &str) -> Result<f32, String> {
    let t = bytes.trim_ascii();
    std::str::from_utf8(t)
        .ok()
        .and_then(|s| s.parse::<f32>().ok())
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{what} {} is not a number", show(t)))
}

/// An integer field parsed as i64.
pub(crate) fn i64_field(bytes: &[u8], what: &str) -> Result<i64, String> {
    let t = bytes.trim_ascii();
    std::str::from_utf8(t)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| format!("{what} {} is not an integer", show(t)))
}

/// The unit of integer time values (epoch seconds by default). Typed Parquet times (timestamps,
/// dates) carry their own unit and ignore this. Kept by hand: it is a flag value (`--time-unit`,
/// with its spellings), which neither chrono nor Arrow's column `TimeUnit` provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Seconds since 1970-01-01T00:00:00Z.
    #[default]
    S,
    /// Milliseconds since the epoch.
    Ms,
    /// Microseconds since the epoch.
    Us,
    /// Nanoseconds since the epoch.
    Ns,
}

impl TimeUnit {
    /// How many of this unit make one second.
    pub fn per_second(self) -> i64 {
        match self {
            TimeUnit::S => 1,
            TimeUnit::Ms => 1_000,
            TimeUnit::Us => 1_000_000,
            TimeUnit::Ns => 1_000_000_000,
        }
    }

    /// The flag spelling: s, ms, us, ns.
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::S => "s",
            TimeUnit::Ms => "ms",
            TimeUnit::Us => "us",
            TimeUnit::Ns => "ns",
        }
    }
}

impl std::str::FromStr for TimeUnit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "s" | "seconds" => TimeUnit::S,
            "ms" | "milliseconds" => TimeUnit::Ms,
            "us" | "µs" | "microseconds" => TimeUnit::Us,
            "ns" | "nanoseconds" => TimeUnit::Ns,
            _ => return Err(format!("unknown time unit {s:?} (expected s, ms, us or ns)")),
        })
    }
}

/// Integer epoch values at or beyond this many seconds (about the year 5138) cannot be seconds: no
/// log is dated that far ahead, while milliseconds since 1973 are all larger.
pub(crate) const MAX_EPOCH_SECONDS: i64 = 100_000_000_000;

/// An integer time value in `unit` as epoch seconds (floored). In seconds, values too large to be
/// seconds are refused with a hint naming the unit they look like, never guessed. Kept by hand: no
/// time crate tells a log's seconds from its milliseconds.
pub(crate) fn int_epoch(v: i64, unit: TimeUnit) -> Result<i64, String> {
    if unit != TimeUnit::S {
        return Ok(v.div_euclid(unit.per_second()));
    }
    let a = v.unsigned_abs();
    if a < MAX_EPOCH_SECONDS as u64 {
        return Ok(v);
    }
    let looks = if a >= 100_000_000_000_000_000 {
        "nanoseconds: pass --time-unit ns"
    } else if a >= 100_000_000_000_000 {
        "microseconds: pass --time-unit us"
    } else {
        "milliseconds: pass --time-unit ms"
    };
    Err(format!(
        "{v} is too large for epoch seconds (it would be after the year 5000); it looks like {looks}"
    ))
}

/// Days of a whole Gregorian cycle: the calendar repeats every 400 years.
const DAYS_PER_400_YEARS: i64 = 146_097;

/// Days from 1970-01-01 to a civil date (proleptic Gregorian), `None` for a date that does not
/// exist (a 31st of April, a 29th of February outside leap years).
///
/// chrono does the calendar. It reaches years ±262,143 while [`parse_datetime`] takes years of up to
/// seven digits, so the year is first brought into 0..400 by whole 400-year cycles, which no crate
/// offers; the cycle repeats exactly, so validity and day counts are unchanged.
fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    let date = NaiveDate::from_ymd_opt(y.rem_euclid(400) as i32, m, d)?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let days = date.signed_duration_since(epoch).num_days();
    y.div_euclid(400)
        .checked_mul(DAYS_PER_400_YEARS)?
        .checked_add(days)
}

/// Epoch seconds as `YYYY-MM-DDTHH:MM:SSZ` for years 0..=9999, else the bare number with
/// "(epoch seconds)": never panics, whatever the value.
pub fn format_epoch_seconds(ts: i64) -> String {
    match DateTime::from_timestamp(ts, 0) {
        Some(t) if (0..=9999).contains(&t.year()) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        _ => format!("{ts} (epoch seconds)"),
    }
}

/// A timestamp: integer epoch seconds, a decimal number of seconds (truncated), or an RFC 3339 /
/// "YYYY-MM-DD HH:MM:SS" date-time (UTC).
#[cfg(test)]
pub(crate) fn time_field(bytes: &[u8], what: &str) -> Result<i64, String> {
    time_field_in(bytes, what, TimeUnit::S)
}

/// [`time_field`] with integer (and decimal) values in `unit`.
pub(crate) fn time_field_in(bytes: &[u8], what: &str, unit: TimeUnit) -> Result<i64, String> {
    let t = bytes.trim_ascii();
    let s = std::str::from_utf8(t).map_err(|_| format!("{what} {} is not valid UTF-8", show(t)))?;
    time_str(s, unit).map_err(|m| format!("{what} {m}"))
}

/// Parses one time string (see [`time_field`]); the error starts with the shown value.
pub(crate) fn time_str(s: &str, unit: TimeUnit) -> Result<i64, String> {
    let t = s.as_bytes();
    if let Ok(v) = s.parse::<i64>() {
        return int_epoch(v, unit).map_err(|m| format!("{}: {m}", show(t)));
    }
    if let Ok(v) = s.parse::<f64>() {
        if v.is_finite() && v.abs() < 9.0e18 {
            let secs = v / unit.per_second() as f64;
            return int_epoch(secs.floor() as i64, TimeUnit::S).map_err(|m| format!("{}: {m}", show(t)));
        }
    }
    if let Some(v) = parse_datetime(s) {
        return Ok(v);
    }
    Err(format!(
        "{} is neither epoch seconds nor a date-time like 2001-02-03T04:05:06Z",
        show(t)
    ))
}

/// Parses `YYYY-MM-DD`, or that followed by `T` or a space, `HH:MM[:SS[.fraction]]` and an optional
/// `Z`, `UTC` or `±HH[:MM]` offset (RFC 3339 and what SQL engines print), as epoch seconds. No offset
/// means UTC; fractions of a second are dropped.
///
/// The shape is read here and the calendar left to chrono ([`days_from_civil`]). chrono's own
/// parsers accept another set of inputs: `%Y` takes at most four digits without a sign, RFC 3339
/// needs seconds and an offset, `%m`/`%d` take one digit and skip spaces, and a leap second `:60`
/// is read as `:59`; the formats above, kept as the importers have always read them, need this
/// small scanner.
pub(crate) fn parse_datetime(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let num = |r: &[u8]| -> Option<i64> {
        if r.is_empty() || !r.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(r).ok()?.parse().ok()
    };
    let (neg, b) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let dash = b.iter().position(|&c| c == b'-')?;
    if dash < 4 || b.len() < dash + 6 || b[dash + 3] != b'-' {
        return None;
    }
    let year = num(b.get(..dash).filter(|y| y.len() <= 7)?)? * if neg { -1 } else { 1 };
    let month = num(&b[dash + 1..dash + 3])?;
    let day = num(&b[dash + 4..dash + 6])?;
    let mut secs =
        days_from_civil(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)?.checked_mul(86_400)?;
    let mut rest = &b[dash + 6..];
    if rest.is_empty() {
        return Some(secs);
    }
    if !matches!(rest[0], b'T' | b't' | b' ') || rest.len() < 6 {
        return None;
    }
    rest = &rest[1..];
    let h = num(&rest[..2])?;
    if rest[2] != b':' {
        return None;
    }
    let mi = num(&rest[3..5])?;
    rest = &rest[5..];
    let mut sec = 0;
    if rest.first() == Some(&b':') {
        sec = num(rest.get(1..3)?)?;
        rest = &rest[3..];
        if rest.first() == Some(&b'.') {
            let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            rest = &rest[1 + n..];
        }
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    secs += h * 3600 + mi * 60 + sec;
    let rest = std::str::from_utf8(rest).ok()?.trim_start();
    let offset = match rest {
        "" | "Z" | "z" | "UTC" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let o = rest[1..].replace(':', "");
            let (oh, om) = match o.len() {
                2 => (num(o.as_bytes())?, 0),
                4 => (num(&o.as_bytes()[..2])?, num(&o.as_bytes()[2..])?),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    Some(secs - offset)
}

/// One `user SEP item SEP rating SEP timestamp` line (MovieLens u.data / ratings.dat).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RatingLine<'a> {
    pub user: &'a str,
    pub item: &'a str,
    pub rating: f32,
    pub ts: i64,
}

/// Parses a rating line; the error says which field is wrong.
pub(crate) fn parse_rating_line<'a>(line: &'a [u8], sep: &[u8]) -> Result<RatingLine<'a>, String> {
    let mut f: [&[u8]; 4] = [&[]; 4];
    let n = split_fields(line, sep, &mut f);
    if n != 4 {
        return Err(format!(
            "expected 4 fields (user, item, rating, timestamp) separated by {:?}, found {n}",
            String::from_utf8_lossy(sep)
        ));
    }
    Ok(RatingLine {
        user: id_field(f[0], "user id")?,
        item: id_field(f[1], "item id")?,
        rating: f32_field(f[2], "rating")?,
        ts: i64_field(f[3], "timestamp")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rating_lines() {
        let r = parse_rating_line(b"1::1193::5::978300760", b"::").unwrap();
        assert_eq!(
            r,
            RatingLine {
                user: "1",
                item: "1193",
                rating: 5.0,
                ts: 978300760
            }
        );
        let r = parse_rating_line(b"196\t242\t3\t881250949", b"\t").unwrap();
        assert_eq!(r.item, "242");
        let e = parse_rating_line(b"1::2::x::4", b"::").unwrap_err();
        assert!(e.contains("rating \"x\" is not a number"), "{e}");
        let e = parse_rating_line(b"1::2::3", b"::").unwrap_err();
        assert!(e.contains("expected 4 fields"), "{e}");
        let e = parse_rating_line(b"1::2::3::4::5", b"::").unwrap_err();
        assert!(e.contains("found 5"), "{e}");
        let e = parse_rating_line(b"::2::3::4", b"::").unwrap_err();
        assert!(e.contains("user id is empty"), "{e}");
    }

    #[test]
    fn lines_strip_cr_and_skip_blank() {
        let v: Vec<_> = lines(b"a\r\n\nb\n  \n").collect();
        assert_eq!(v, vec![(1, &b"a"[..]), (3, &b"b"[..])]);
    }

    #[test]
    fn integer_times_in_every_unit_and_refused_when_too_large_for_seconds() {
        assert_eq!(int_epoch(1_609_459_200, TimeUnit::S).unwrap(), 1_609_459_200);
        assert_eq!(int_epoch(1_609_459_200_123, TimeUnit::Ms).unwrap(), 1_609_459_200);
        assert_eq!(
            int_epoch(1_609_459_200_123_456, TimeUnit::Us).unwrap(),
            1_609_459_200
        );
        assert_eq!(
            int_epoch(1_609_459_200_123_456_789, TimeUnit::Ns).unwrap(),
            1_609_459_200
        );
        // Floored, so times before 1970 stay before the second they belong to.
        assert_eq!(int_epoch(-1, TimeUnit::Ms).unwrap(), -1);
        assert_eq!(int_epoch(-1_000, TimeUnit::Ms).unwrap(), -1);
        let e = int_epoch(1_609_459_200_000, TimeUnit::S).unwrap_err();
        assert!(e.contains("1609459200000") && e.contains("--time-unit ms"), "{e}");
        let e = int_epoch(1_609_459_200_000_000, TimeUnit::S).unwrap_err();
        assert!(e.contains("--time-unit us"), "{e}");
        let e = int_epoch(-1_609_459_200_000_000_000, TimeUnit::S).unwrap_err();
        assert!(e.contains("--time-unit ns"), "{e}");
        assert!(int_epoch(i64::MIN, TimeUnit::S).is_err());
        assert_eq!(
            int_epoch(i64::MIN, TimeUnit::Ns).unwrap(),
            i64::MIN.div_euclid(1_000_000_000)
        );
        let e = time_field_in(b"1609459200000", "ts", TimeUnit::S).unwrap_err();
        assert!(e.starts_with("ts \"1609459200000\": "), "{e}");
        assert_eq!(
            time_field_in(b"1609459200000", "ts", TimeUnit::Ms).unwrap(),
            1_609_459_200
        );
    }

    #[test]
    fn datetimes_with_offsets_fractions_and_any_year() {
        assert_eq!(parse_datetime("2021-01-01T00:00:00Z"), Some(1_609_459_200));
        assert_eq!(parse_datetime("2021-01-01 01:00:00+01:00"), Some(1_609_459_200));
        assert_eq!(
            parse_datetime("2020-12-31T19:00:00.123456-05:00"),
            Some(1_609_459_200)
        );
        assert_eq!(parse_datetime("2021-01-01 00:00:00+00"), Some(1_609_459_200));
        assert_eq!(parse_datetime("2021-01-01T00:00"), Some(1_609_459_200));
        assert_eq!(parse_datetime("2021-01-01"), Some(1_609_459_200));
        assert_eq!(parse_datetime("1969-12-31T23:59:59Z"), Some(-1));
        assert_eq!(parse_datetime("2000-02-29"), Some(951_782_400));
        assert_eq!(parse_datetime("2001-02-29"), None);
        assert_eq!(parse_datetime("2021-13-01"), None);
        assert_eq!(parse_datetime("2021-01-01T25:00:00Z"), None);
        assert_eq!(parse_datetime("2021-01-01X"), None);
        assert_eq!(parse_datetime("12345-01-01"), Some(327_403_382_400));
    }

    #[test]
    fn epoch_formatting_never_panics() {
        assert_eq!(format_epoch_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_epoch_seconds(1_609_459_200), "2021-01-01T00:00:00Z");
        assert_eq!(format_epoch_seconds(-1), "1969-12-31T23:59:59Z");
        assert_eq!(
            format_epoch_seconds(1_609_459_200_000),
            "1609459200000 (epoch seconds)"
        );
        for v in [i64::MIN, i64::MAX, -62_167_219_200, 253_402_300_799] {
            let _ = format_epoch_seconds(v);
        }
        for v in [0i64, 1, -86_401, 951_782_400, 253_402_300_799, -62_167_219_200] {
            assert_eq!(parse_datetime(&format_epoch_seconds(v)), Some(v));
        }
    }

    #[test]
    fn times() {
        assert_eq!(time_field(b"978300760", "t").unwrap(), 978300760);
        assert_eq!(time_field(b"12.9", "t").unwrap(), 12);
        assert_eq!(time_field(b"1970-01-02T00:00:00Z", "t").unwrap(), 86400);
        assert_eq!(time_field(b"1970-01-02 00:00:01", "t").unwrap(), 86401);
        assert_eq!(time_field(b"1970-01-03", "t").unwrap(), 2 * 86400);
        assert!(time_field(b"yesterday", "t").is_err());
    }

    #[test]
    fn latin1_decodes_accents() {
        assert_eq!(
            decode(b"Mis\xe9rables", TextEncoding::Latin1).unwrap(),
            "Misérables"
        );
        assert!(decode(b"Mis\xe9rables", TextEncoding::Utf8).is_err());
    }

    proptest! {
        #[test]
        fn rating_line_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64),
                                           sep in prop_oneof![Just(&b"::"[..]), Just(&b"\t"[..]), Just(&b"|"[..])]) {
            let _ = parse_rating_line(&bytes, sep);
            let _ = time_field(&bytes, "t");
            let _ = parse_datetime(&String::from_utf8_lossy(&bytes));
            let _ = decode(&bytes, TextEncoding::Utf8);
            let _ = decode(&bytes, TextEncoding::Latin1);
            for (_, l) in lines(&bytes) {
                let mut f: [&[u8]; 3] = [&[]; 3];
                let _ = split_fields(l, sep, &mut f);
            }
        }

        #[test]
        fn rating_line_roundtrip(u in "[a-z0-9]{1,8}", i in "[a-z0-9]{1,8}", r in 0u8..=10, t in any::<i64>()) {
            let line = format!("{u}::{i}::{r}::{t}");
            let p = parse_rating_line(line.as_bytes(), b"::").unwrap();
            prop_assert_eq!(p, RatingLine { user: &u, item: &i, rating: r as f32, ts: t });
        }
    }
}
