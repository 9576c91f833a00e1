//! Byte-level line parsing shared by the text importers: no per-line allocation, errors that say which
//! field is wrong and why (the caller adds file and line).

use std::borrow::Cow;

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
    std::str::from_utf8(t).map_err(|_| format!("{what} {} is not valid UTF-8", show(t)))
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

/// A timestamp: integer epoch seconds, a decimal number of seconds (truncated), or an RFC 3339 /
/// "YYYY-MM-DD HH:MM:SS" date-time (UTC).
pub(crate) fn time_field(bytes: &[u8], what: &str) -> Result<i64, String> {
    let t = bytes.trim_ascii();
    let s = std::str::from_utf8(t).map_err(|_| format!("{what} {} is not valid UTF-8", show(t)))?;
    if let Ok(v) = s.parse::<i64>() {
        return Ok(v);
    }
    if let Ok(v) = s.parse::<f64>() {
        if v.is_finite() && v.abs() < 9.0e18 {
            return Ok(v.trunc() as i64);
        }
    }
    let parse = |x: &str| humantime::parse_rfc3339_weak(x).ok();
    let st = parse(s).or_else(|| {
        // A bare date: midnight UTC.
        (s.len() == 10)
            .then(|| format!("{s} 00:00:00"))
            .and_then(|d| parse(&d))
    });
    if let Some(st) = st {
        return Ok(match st.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        });
    }
    Err(format!(
        "{what} {} is neither epoch seconds nor a date-time like 2001-02-03T04:05:06Z",
        show(t)
    ))
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
