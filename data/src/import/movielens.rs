//! MovieLens 100K and 1M folders. Text is Latin-1 (titles like "Misérables, Les (1995)"); features
//! written: items title, genres and `year` (100K: the release date's year, else the year in the
//! title; 1M: the year in the title); users `gender`, `age` (the 1M age groups, which 100K's exact
//! ages are bucketed into, so both read alike), `occupation` (1M codes mapped to the README's names)
//! and `zip_region` (the first character of the zip code: the US postal region, coarse enough that
//! every value has many users, whereas 3-digit prefixes mostly hold one or two).

use std::path::Path;

use super::text::{self, lines, parse_rating_line, split_fields, TextEncoding};
use super::{read_file, Parsed};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::schema::{ItemRows, UserRows};

/// The 19 genres of ML-100K's u.item flag columns, in order (u.genre).
const GENRES_100K: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// ML-1M occupation codes (README).
const OCCUPATIONS_1M: [&str; 21] = [
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
];

/// ML-1M age group labels by code.
fn age_group_1m(code: &str) -> Option<&'static str> {
    Some(match code {
        "1" => "under 18",
        "18" => "18-24",
        "25" => "25-34",
        "35" => "35-44",
        "45" => "45-49",
        "50" => "50-55",
        "56" => "56+",
        _ => return None,
    })
}

/// Buckets an exact age into the ML-1M groups.
fn age_group(age: i64) -> &'static str {
    match age {
        i64::MIN..=17 => "under 18",
        18..=24 => "18-24",
        25..=34 => "25-34",
        35..=44 => "35-44",
        45..=49 => "45-49",
        50..=55 => "50-55",
        _ => "56+",
    }
}

/// The last "(YYYY)" in a title, e.g. "Toy Story (1995)" → "1995".
pub(crate) fn year_in_title(title: &str) -> Option<String> {
    let b = title.as_bytes();
    let mut end = b.len();
    while let Some(close) = b[..end].iter().rposition(|&c| c == b')') {
        if close >= 5 && b[close - 5] == b'(' && b[close - 4..close].iter().all(u8::is_ascii_digit) {
            return Some(title[close - 4..close].to_string());
        }
        end = close;
    }
    None
}

fn zip_region(zip: &str) -> Option<String> {
    zip.trim().chars().next().map(|c| c.to_string())
}

fn file_in(dir: &Path, name: &str) -> Result<std::path::PathBuf> {
    let p = dir.join(name);
    if !p.is_file() {
        return Err(Error::io(
            &p,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("missing: is {} a MovieLens folder?", dir.display()),
            ),
        ));
    }
    Ok(p)
}

fn read_ratings(path: &Path, sep: &[u8], p: &mut Parsed, progress: &dyn Progress) -> Result<()> {
    let buf = read_file(path)?;
    progress.start("parsing ratings", Some(buf.len() as u64));
    // About 25 bytes per line; reserve to avoid regrowth.
    p.x = crate::interactions::Interactions::with_capacity(buf.len() / 20 + 16);
    let mut last_user: (&str, u32) = ("", u32::MAX);
    for (line_no, line) in lines(&buf) {
        let r = parse_rating_line(line, sep).map_err(|m| Error::parse(path, line_no, m))?;
        let u = if r.user == last_user.0 && last_user.1 != u32::MAX {
            last_user.1
        } else {
            let u = p.users.insert(r.user);
            last_user = (r.user, u);
            u
        };
        let i = p.items.insert(r.item);
        p.x.push(u, i, r.rating, r.ts);
    }
    progress.inc(buf.len() as u64);
    progress.finish();
    Ok(())
}

fn field_str(path: &Path, line_no: u64, bytes: &[u8], enc: TextEncoding) -> Result<String> {
    text::decode(bytes, enc)
        .map(|c| c.trim().to_string())
        .map_err(|m| Error::parse(path, line_no, m))
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Parses an ML-100K folder.
pub(crate) fn parse_100k(dir: &Path, progress: &dyn Progress) -> Result<Parsed> {
    let item_path = file_in(dir, "u.item")?;
    let user_path = file_in(dir, "u.user")?;
    let data_path = file_in(dir, "u.data")?;
    let items = parse_100k_items(&item_path, &read_file(&item_path)?)?;
    let users = parse_100k_users(&user_path, &read_file(&user_path)?)?;
    let mut p = Parsed::with_sides(Some((item_path, items)), Some((user_path, users)))?;
    read_ratings(&data_path, b"\t", &mut p, progress)?;
    Ok(p)
}

pub(crate) fn parse_100k_items(path: &Path, buf: &[u8]) -> Result<ItemRows> {
    let mut rows = ItemRows::default();
    let mut year = Vec::new();
    let mut f: [&[u8]; 24] = [&[]; 24];
    for (line_no, line) in lines(buf) {
        let n = split_fields(line, b"|", &mut f);
        if n != 24 {
            return Err(Error::parse(
                path,
                line_no,
                format!("expected 24 '|'-separated fields (id, title, release date, video date, url, 19 genre flags), found {n}"),
            ));
        }
        let id = text::id_field(f[0], "movie id").map_err(|m| Error::parse(path, line_no, m))?;
        let title = field_str(path, line_no, f[1], TextEncoding::Latin1)?;
        let date = field_str(path, line_no, f[2], TextEncoding::Latin1)?;
        let mut genres = Vec::new();
        for (k, flag) in f[5..24].iter().enumerate() {
            match flag.trim_ascii() {
                b"1" => genres.push(GENRES_100K[k].to_string()),
                b"0" => {}
                other => {
                    return Err(Error::parse(
                        path,
                        line_no,
                        format!(
                            "genre flag {} ({}) is {:?}, expected 0 or 1",
                            k + 1,
                            GENRES_100K[k],
                            String::from_utf8_lossy(other)
                        ),
                    ))
                }
            }
        }
        let y = date
            .rsplit('-')
            .next()
            .filter(|y| y.len() == 4 && y.bytes().all(|c| c.is_ascii_digit()))
            .map(str::to_string)
            .or_else(|| year_in_title(&title));
        rows.ids.push(id.to_string());
        rows.titles.push(non_empty(title));
        rows.genres.push(genres);
        year.push(y);
    }
    rows.categorical.push(("year".into(), year));
    Ok(rows)
}

pub(crate) fn parse_100k_users(path: &Path, buf: &[u8]) -> Result<UserRows> {
    let mut rows = UserRows::default();
    let (mut gender, mut age, mut occ, mut zip) = (vec![], vec![], vec![], vec![]);
    let mut f: [&[u8]; 5] = [&[]; 5];
    for (line_no, line) in lines(buf) {
        let n = split_fields(line, b"|", &mut f);
        if n != 5 {
            return Err(Error::parse(
                path,
                line_no,
                format!("expected 5 '|'-separated fields (id, age, gender, occupation, zip), found {n}"),
            ));
        }
        let err = |m| Error::parse(path, line_no, m);
        rows.ids
            .push(text::id_field(f[0], "user id").map_err(err)?.to_string());
        let a = text::i64_field(f[1], "age").map_err(err)?;
        age.push(Some(age_group(a).to_string()));
        gender.push(non_empty(field_str(path, line_no, f[2], TextEncoding::Latin1)?));
        occ.push(non_empty(field_str(path, line_no, f[3], TextEncoding::Latin1)?));
        zip.push(zip_region(&field_str(path, line_no, f[4], TextEncoding::Latin1)?));
    }
    rows.categorical = vec![
        ("gender".into(), gender),
        ("age".into(), age),
        ("occupation".into(), occ),
        ("zip_region".into(), zip),
    ];
    Ok(rows)
}

/// Parses an ML-1M folder (or ml-1m-partial: the same files).
pub(crate) fn parse_1m(dir: &Path, progress: &dyn Progress) -> Result<Parsed> {
    let item_path = file_in(dir, "movies.dat")?;
    let user_path = file_in(dir, "users.dat")?;
    let data_path = file_in(dir, "ratings.dat")?;
    let items = parse_1m_movies(&item_path, &read_file(&item_path)?)?;
    let users = parse_1m_users(&user_path, &read_file(&user_path)?)?;
    let mut p = Parsed::with_sides(Some((item_path, items)), Some((user_path, users)))?;
    read_ratings(&data_path, b"::", &mut p, progress)?;
    Ok(p)
}

pub(crate) fn parse_1m_movies(path: &Path, buf: &[u8]) -> Result<ItemRows> {
    let mut rows = ItemRows::default();
    let mut year = Vec::new();
    let mut f: [&[u8]; 3] = [&[]; 3];
    for (line_no, line) in lines(buf) {
        let n = split_fields(line, b"::", &mut f);
        if n != 3 {
            return Err(Error::parse(
                path,
                line_no,
                format!("expected 3 '::'-separated fields (id, title, genres), found {n}"),
            ));
        }
        let id = text::id_field(f[0], "movie id").map_err(|m| Error::parse(path, line_no, m))?;
        let title = field_str(path, line_no, f[1], TextEncoding::Latin1)?;
        let genres = field_str(path, line_no, f[2], TextEncoding::Latin1)?;
        year.push(year_in_title(&title));
        rows.ids.push(id.to_string());
        rows.titles.push(non_empty(title));
        rows.genres.push(
            genres
                .split('|')
                .map(str::trim)
                .filter(|g| !g.is_empty() && *g != "(no genres listed)")
                .map(str::to_string)
                .collect(),
        );
    }
    rows.categorical.push(("year".into(), year));
    Ok(rows)
}

pub(crate) fn parse_1m_users(path: &Path, buf: &[u8]) -> Result<UserRows> {
    let mut rows = UserRows::default();
    let (mut gender, mut age, mut occ, mut zip) = (vec![], vec![], vec![], vec![]);
    let mut f: [&[u8]; 5] = [&[]; 5];
    for (line_no, line) in lines(buf) {
        let n = split_fields(line, b"::", &mut f);
        if n != 5 {
            return Err(Error::parse(
                path,
                line_no,
                format!("expected 5 '::'-separated fields (id, gender, age, occupation, zip), found {n}"),
            ));
        }
        let err = |m| Error::parse(path, line_no, m);
        rows.ids
            .push(text::id_field(f[0], "user id").map_err(err)?.to_string());
        gender.push(non_empty(field_str(path, line_no, f[1], TextEncoding::Latin1)?));
        let a = text::id_field(f[2], "age").map_err(err)?;
        age.push(Some(
            age_group_1m(a)
                .ok_or_else(|| err(format!("age code {a:?} is not one of 1, 18, 25, 35, 45, 50, 56")))?
                .to_string(),
        ));
        let o = text::i64_field(f[3], "occupation").map_err(err)?;
        let name = usize::try_from(o)
            .ok()
            .and_then(|o| OCCUPATIONS_1M.get(o))
            .ok_or_else(|| err(format!("occupation code {o} is not in 0..=20")))?;
        occ.push(Some(name.to_string()));
        zip.push(zip_region(&field_str(path, line_no, f[4], TextEncoding::Latin1)?));
    }
    rows.categorical = vec![
        ("gender".into(), gender),
        ("age".into(), age),
        ("occupation".into(), occ),
        ("zip_region".into(), zip),
    ];
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn years() {
        assert_eq!(year_in_title("Toy Story (1995)").as_deref(), Some("1995"));
        assert_eq!(
            year_in_title("Metisse (Café au Lait) (1993)").as_deref(),
            Some("1993")
        );
        assert_eq!(year_in_title("unknown"), None);
        assert_eq!(year_in_title("(12345)"), None);
    }

    #[test]
    fn latin1_titles_and_features() {
        let p = Path::new("movies.dat");
        let r = parse_1m_movies(p, b"73::Mis\xe9rables, Les (1995)::Drama|Musical\n").unwrap();
        assert_eq!(r.titles[0].as_deref(), Some("Misérables, Les (1995)"));
        assert_eq!(r.genres[0], vec!["Drama", "Musical"]);
        assert_eq!(r.categorical[0].1[0].as_deref(), Some("1995"));
        let u = parse_1m_users(Path::new("users.dat"), b"1::F::1::10::48067\n").unwrap();
        let vals: Vec<_> = u.categorical.iter().map(|c| c.1[0].clone().unwrap()).collect();
        assert_eq!(vals, vec!["F", "under 18", "K-12 student", "4"]);
        let e = parse_1m_users(Path::new("users.dat"), b"1::F::1::10::48067\n2::M::7::1::1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "users.dat:2: age code \"7\" is not one of 1, 18, 25, 35, 45, 50, 56"
        );
    }

    #[test]
    fn ml100k_items_and_users() {
        let line = b"267|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n";
        let r = parse_100k_items(Path::new("u.item"), line).unwrap();
        assert_eq!(r.ids, vec!["267", "1"]);
        assert_eq!(r.genres[0], vec!["unknown"]);
        assert_eq!(r.genres[1], vec!["Animation", "Children's", "Comedy"]);
        assert_eq!(r.categorical[0].1, vec![None, Some("1995".to_string())]);
        let e = parse_100k_items(Path::new("u.item"), b"1|x|||u|0|0\n").unwrap_err();
        assert!(e.to_string().starts_with("u.item:1: expected 24"), "{e}");
        let u = parse_100k_users(Path::new("u.user"), b"1|24|M|technician|85711\n").unwrap();
        let vals: Vec<_> = u.categorical.iter().map(|c| c.1[0].clone().unwrap()).collect();
        assert_eq!(vals, vec!["M", "18-24", "technician", "8"]);
    }

    proptest! {
        #[test]
        fn side_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let p = Path::new("f");
            let _ = parse_100k_items(p, &bytes);
            let _ = parse_100k_users(p, &bytes);
            let _ = parse_1m_movies(p, &bytes);
            let _ = parse_1m_users(p, &bytes);
            let _ = year_in_title(&String::from_utf8_lossy(&bytes));
        }
    }
}
