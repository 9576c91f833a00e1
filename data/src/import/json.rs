//! The nested JSON map tutorials use: `{"user": {"item": rating, ...}, ...}`. Parsed with a streaming
//! visitor, so records keep file order (the time of a record is its position, as JSON has no time) and
//! no intermediate `Value` tree is built.

use std::fmt;
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::{read_file, Parsed};
use crate::error::{Error, Result};
use crate::progress::Progress;

struct Users<'a> {
    p: &'a mut Parsed,
    seq: i64,
}

impl<'de> DeserializeSeed<'de> for &mut Users<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &mut Users<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"an object mapping user ids to {"item id": rating} objects"#)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(user) = map.next_key::<String>()? {
            if let Some(m) = crate::id_problem(&user) {
                return Err(serde::de::Error::custom(format!("user id: {m}")));
            }
            let u = self.p.users.insert(&user);
            map.next_value_seed(Ratings { users: &mut *self, u })?;
        }
        Ok(())
    }
}

struct Ratings<'a, 'b> {
    users: &'a mut Users<'b>,
    u: u32,
}

impl<'de> DeserializeSeed<'de> for Ratings<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Ratings<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"an object mapping item ids to numeric ratings, like {"item": 4.5}"#)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(item) = map.next_key::<String>()? {
            if let Some(m) = crate::id_problem(&item) {
                return Err(serde::de::Error::custom(format!("item id: {m}")));
            }
            let r: f64 = map.next_value()?;
            let i = self.users.p.items.insert(&item);
            self.users.p.x.push(self.u, i, r as f32, self.users.seq);
            self.users.seq += 1;
        }
        Ok(())
    }
}

pub(crate) fn parse(path: &Path, mut p: Parsed, progress: &dyn Progress) -> Result<Parsed> {
    let buf = read_file(path)?;
    progress.start("parsing json", Some(buf.len() as u64));
    if buf.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::Empty {
            file: path.to_path_buf(),
            what: "empty file".into(),
        });
    }
    parse_bytes(path, &buf, &mut p)?;
    progress.inc(buf.len() as u64);
    progress.finish();
    Ok(p)
}

/// Parses JSON bytes into `p`; errors carry the line of the problem.
/// A UTF-8 byte-order mark is skipped, as the CSV reader skips it.
pub(crate) fn parse_bytes(path: &Path, buf: &[u8], p: &mut Parsed) -> Result<()> {
    let buf = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(buf);
    let mut de = serde_json::Deserializer::from_slice(buf);
    let mut users = Users { p, seq: 0 };
    let res = (&mut users).deserialize(&mut de).and_then(|_| de.end());
    res.map_err(|e| Error::parse(path, e.line() as u64, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(s: &str) -> Result<Parsed> {
        let mut p = Parsed::with_sides(None, None).unwrap();
        parse_bytes(Path::new("r.json"), s.as_bytes(), &mut p)?;
        Ok(p)
    }

    #[test]
    fn nested_map_in_file_order() {
        let p = run(r#"{"bob": {"z": 5, "a": 3.5}, "al": {"z": 1}}"#).unwrap();
        assert_eq!(p.users.ids(), &["bob", "al"]);
        assert_eq!(p.items.ids(), &["z", "a"]);
        assert_eq!(p.x.user, vec![0, 0, 1]);
        assert_eq!(p.x.item, vec![0, 1, 0]);
        assert_eq!(p.x.weight, vec![5.0, 3.5, 1.0]);
        assert_eq!(p.x.ts, vec![0, 1, 2]);
    }

    #[test]
    fn a_byte_order_mark_is_skipped_as_in_csv() {
        let p = run("\u{feff}{\"u\": {\"i\": 2}}").unwrap();
        assert_eq!(p.users.ids(), &["u"]);
        assert_eq!(p.x.weight, vec![2.0]);
    }

    #[test]
    fn wrong_shapes_are_clear_errors() {
        let e = run("[1, 2]").unwrap_err().to_string();
        assert!(e.contains("an object mapping user ids"), "{e}");
        let e = run("{\n\"u\": {\"i\": \"five\"}}").unwrap_err().to_string();
        assert!(e.starts_with("r.json:2:"), "{e}");
        let e = run(r#"{"u": [1]}"#).unwrap_err().to_string();
        assert!(e.contains("numeric ratings"), "{e}");
        assert!(run(r#"{"u": {}} x"#).is_err());
    }

    proptest! {
        #[test]
        fn json_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let mut p = Parsed::with_sides(None, None).unwrap();
            let _ = parse_bytes(Path::new("f"), &bytes, &mut p);
        }

        #[test]
        fn json_parser_never_panics_on_near_json(s in r#"[{}\[\]":, 0-9a-z.]{0,60}"#) {
            let mut p = Parsed::with_sides(None, None).unwrap();
            let _ = parse_bytes(Path::new("f"), s.as_bytes(), &mut p);
        }
    }
}
