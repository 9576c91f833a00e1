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

/// One column (or, for genre flags, a run of columns) of a MovieLens item file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemField {
    /// The movie id.
    Id,
    /// The title, with the year in parentheses.
    Title,
    /// A release date like 01-Jan-1995 (its year wins over the title's).
    ReleaseDate,
    /// A column that is not read (video release date, IMDb url).
    Skip,
    /// One 0/1 column per genre of [`GENRES_100K`].
    GenreFlags,
    /// Genres as `A|B`.
    GenreList,
}

impl ItemField {
    fn width(self) -> usize {
        match self {
            ItemField::GenreFlags => GENRES_100K.len(),
            _ => 1,
        }
    }
}

/// One column of a MovieLens user file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserField {
    /// The user id.
    Id,
    /// M or F.
    Gender,
    /// An exact age in years, bucketed into the 1M groups.
    AgeYears,
    /// A 1M age-group code (1, 18, 25, …).
    AgeCode,
    /// An occupation name.
    OccupationName,
    /// A 1M occupation code (0..=20, [`OCCUPATIONS_1M`]).
    OccupationCode,
    /// A zip code, reduced to its first character.
    Zip,
}

/// Everything that differs between the MovieLens releases: file names, separators, columns.
/// Text is Latin-1 in both.
#[derive(Debug)]
struct Layout {
    ratings: &'static str,
    ratings_sep: &'static [u8],
    items: &'static str,
    users: &'static str,
    side_sep: &'static [u8],
    item_fields: &'static [ItemField],
    /// The item columns as the field-count error names them.
    item_desc: &'static str,
    user_fields: &'static [UserField],
    user_desc: &'static str,
}

const ML_100K: Layout = Layout {
    ratings: "u.data",
    ratings_sep: b"\t",
    items: "u.item",
    users: "u.user",
    side_sep: b"|",
    item_fields: &[
        ItemField::Id,
        ItemField::Title,
        ItemField::ReleaseDate,
        ItemField::Skip,
        ItemField::Skip,
        ItemField::GenreFlags,
    ],
    item_desc: "id, title, release date, video date, url, 19 genre flags",
    user_fields: &[
        UserField::Id,
        UserField::AgeYears,
        UserField::Gender,
        UserField::OccupationName,
        UserField::Zip,
    ],
    user_desc: "id, age, gender, occupation, zip",
};

const ML_1M: Layout = Layout {
    ratings: "ratings.dat",
    ratings_sep: b"::",
    items: "movies.dat",
    users: "users.dat",
    side_sep: b"::",
    item_fields: &[ItemField::Id, ItemField::Title, ItemField::GenreList],
    item_desc: "id, title, genres",
    user_fields: &[
        UserField::Id,
        UserField::Gender,
        UserField::AgeCode,
        UserField::OccupationCode,
        UserField::Zip,
    ],
    user_desc: "id, gender, age, occupation, zip",
};

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

/// Parses a MovieLens folder of the given layout.
fn parse_folder(layout: &Layout, dir: &Path, progress: &dyn Progress) -> Result<Parsed> {
    let item_path = file_in(dir, layout.items)?;
    let user_path = file_in(dir, layout.users)?;
    let data_path = file_in(dir, layout.ratings)?;
    let items = parse_items(layout, &item_path, &read_file(&item_path)?)?;
    let users = parse_users(layout, &user_path, &read_file(&user_path)?)?;
    let mut p = Parsed::with_sides(Some((item_path, items)), Some((user_path, users)))?;
    read_ratings(&data_path, layout.ratings_sep, &mut p, progress)?;
    Ok(p)
}

/// Parses an ML-100K folder.
pub(crate) fn parse_100k(dir: &Path, progress: &dyn Progress) -> Result<Parsed> {
    parse_folder(&ML_100K, dir, progress)
}

/// Parses an ML-1M folder (or ml-1m-partial: the same files).
pub(crate) fn parse_1m(dir: &Path, progress: &dyn Progress) -> Result<Parsed> {
    parse_folder(&ML_1M, dir, progress)
}

fn field_count_error(path: &Path, line_no: u64, sep: &[u8], desc: &str, want: usize, n: usize) -> Error {
    Error::parse(
        path,
        line_no,
        format!(
            "expected {want} '{}'-separated fields ({desc}), found {n}",
            String::from_utf8_lossy(sep)
        ),
    )
}

/// Parses an item file: features title, genres and `year` (the release date's, else the title's).
fn parse_items(layout: &Layout, path: &Path, buf: &[u8]) -> Result<ItemRows> {
    let want: usize = layout.item_fields.iter().map(|f| f.width()).sum();
    let mut rows = ItemRows::default();
    let mut year = Vec::new();
    let mut f: Vec<&[u8]> = vec![&[]; want];
    for (line_no, line) in lines(buf) {
        let n = split_fields(line, layout.side_sep, &mut f);
        if n != want {
            return Err(field_count_error(
                path,
                line_no,
                layout.side_sep,
                layout.item_desc,
                want,
                n,
            ));
        }
        let err = |m| Error::parse(path, line_no, m);
        let (mut id, mut title, mut date_year) = (None, String::new(), None);
        let mut genres = Vec::new();
        let mut at = 0;
        for &field in layout.item_fields {
            let v = f[at];
            match field {
                ItemField::Id => id = Some(text::id_field(v, "movie id").map_err(err)?),
                ItemField::Title => title = field_str(path, line_no, v, TextEncoding::Latin1)?,
                ItemField::ReleaseDate => {
                    let date = field_str(path, line_no, v, TextEncoding::Latin1)?;
                    date_year = date
                        .rsplit('-')
                        .next()
                        .filter(|y| y.len() == 4 && y.bytes().all(|c| c.is_ascii_digit()))
                        .map(str::to_string);
                }
                ItemField::Skip => {}
                ItemField::GenreFlags => {
                    for (k, flag) in f[at..at + GENRES_100K.len()].iter().enumerate() {
                        match flag.trim_ascii() {
                            b"1" => genres.push(GENRES_100K[k].to_string()),
                            b"0" => {}
                            other => {
                                return Err(err(format!(
                                    "genre flag {} ({}) is {:?}, expected 0 or 1",
                                    k + 1,
                                    GENRES_100K[k],
                                    String::from_utf8_lossy(other)
                                )))
                            }
                        }
                    }
                }
                ItemField::GenreList => {
                    let g = field_str(path, line_no, v, TextEncoding::Latin1)?;
                    genres = g
                        .split('|')
                        .map(str::trim)
                        .filter(|g| !g.is_empty() && *g != "(no genres listed)")
                        .map(str::to_string)
                        .collect();
                }
            }
            at += field.width();
        }
        year.push(date_year.or_else(|| year_in_title(&title)));
        rows.ids.push(id.unwrap_or_default().to_string());
        rows.titles.push(non_empty(title));
        rows.genres.push(genres);
    }
    rows.categorical.push(("year".into(), year));
    Ok(rows)
}

/// Parses a user file: features `gender`, `age` (1M groups), `occupation` (names) and `zip_region`.
fn parse_users(layout: &Layout, path: &Path, buf: &[u8]) -> Result<UserRows> {
    let want = layout.user_fields.len();
    let mut rows = UserRows::default();
    let (mut gender, mut age, mut occ, mut zip) = (vec![], vec![], vec![], vec![]);
    let mut f: Vec<&[u8]> = vec![&[]; want];
    for (line_no, line) in lines(buf) {
        let n = split_fields(line, layout.side_sep, &mut f);
        if n != want {
            return Err(field_count_error(
                path,
                line_no,
                layout.side_sep,
                layout.user_desc,
                want,
                n,
            ));
        }
        let err = |m| Error::parse(path, line_no, m);
        for (&field, &v) in layout.user_fields.iter().zip(&f) {
            match field {
                UserField::Id => rows
                    .ids
                    .push(text::id_field(v, "user id").map_err(err)?.to_string()),
                UserField::Gender => {
                    gender.push(non_empty(field_str(path, line_no, v, TextEncoding::Latin1)?))
                }
                UserField::AgeYears => {
                    let a = text::i64_field(v, "age").map_err(err)?;
                    age.push(Some(age_group(a).to_string()));
                }
                UserField::AgeCode => {
                    let a = text::id_field(v, "age").map_err(err)?;
                    age.push(Some(
                        age_group_1m(a)
                            .ok_or_else(|| {
                                err(format!("age code {a:?} is not one of 1, 18, 25, 35, 45, 50, 56"))
                            })?
                            .to_string(),
                    ));
                }
                UserField::OccupationName => {
                    occ.push(non_empty(field_str(path, line_no, v, TextEncoding::Latin1)?))
                }
                UserField::OccupationCode => {
                    let o = text::i64_field(v, "occupation").map_err(err)?;
                    let name = usize::try_from(o)
                        .ok()
                        .and_then(|o| OCCUPATIONS_1M.get(o))
                        .ok_or_else(|| err(format!("occupation code {o} is not in 0..=20")))?;
                    occ.push(Some(name.to_string()));
                }
                UserField::Zip => zip.push(zip_region(&field_str(path, line_no, v, TextEncoding::Latin1)?)),
            }
        }
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
fn parse_100k_items(path: &Path, buf: &[u8]) -> Result<ItemRows> {
    parse_items(&ML_100K, path, buf)
}

#[cfg(test)]
fn parse_100k_users(path: &Path, buf: &[u8]) -> Result<UserRows> {
    parse_users(&ML_100K, path, buf)
}

#[cfg(test)]
fn parse_1m_movies(path: &Path, buf: &[u8]) -> Result<ItemRows> {
    parse_items(&ML_1M, path, buf)
}

#[cfg(test)]
fn parse_1m_users(path: &Path, buf: &[u8]) -> Result<UserRows> {
    parse_users(&ML_1M, path, buf)
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
