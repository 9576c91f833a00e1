//! Ids of the log that the side files lack are reported (count and examples), not silently imported
//! as items or users without features.

use std::path::Path;

use twotower_data::{import, Dataset, ImportFormat, ImportOptions, NoProgress};

mod common;
use common::shared;

/// A copy of a MovieLens folder with `file` replaced by its first `keep` lines.
fn cut(src: &Path, dst: &Path, file: &str, keep: usize) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let bytes = std::fs::read(e.path()).unwrap();
        let bytes = if e.file_name() == file {
            let mut out = Vec::new();
            for line in bytes.split_inclusive(|&b| b == b'\n').take(keep) {
                out.extend_from_slice(line);
            }
            out
        } else {
            bytes
        };
        std::fs::write(dst.join(e.file_name()), bytes).unwrap();
    }
}

#[test]
fn ml100k_with_u_item_cut_to_100_rows_warns_with_count_and_examples() {
    let Some(src) = shared("ml-100k") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cut_dir = tmp.path().join("ml-100k");
    cut(&src, &cut_dir, "u.item", 100);
    let out = tmp.path().join("ds");
    let r = import(
        &cut_dir,
        &out,
        &ImportOptions::new(ImportFormat::Movielens100k),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(r.items_without_features, 1_582);
    assert_eq!(r.users_without_features, 0);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].starts_with("1582 of 1682 interacting items have no row in the item features (e.g. \""),
        "{}",
        r.warnings[0]
    );
    let ds = Dataset::load(&out).unwrap();
    assert_eq!(ds.manifest.extra["warnings"][0], r.warnings[0].as_str());
    // The full folder: no warning.
    let r = import(
        &src,
        &out,
        &ImportOptions::new(ImportFormat::Movielens100k),
        &NoProgress,
    )
    .unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn empty_movies_dat_and_users_missing_from_a_csv_side_file_warn() {
    let tmp = tempfile::tempdir().unwrap();
    let ml = tmp.path().join("ml-1m");
    std::fs::create_dir_all(&ml).unwrap();
    std::fs::write(ml.join("movies.dat"), b"").unwrap();
    std::fs::write(ml.join("users.dat"), b"1::F::1::10::48067\n").unwrap();
    std::fs::write(
        ml.join("ratings.dat"),
        b"1::10::5::978300760\n2::20::3::978302109\n",
    )
    .unwrap();
    let out = tmp.path().join("ds");
    let r = import(
        &ml,
        &out,
        &ImportOptions::new(ImportFormat::Movielens1m),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert!(r.warnings[0]
        .starts_with("2 of 2 interacting items have no row in the item features (e.g. \"10\", \"20\")"));
    assert!(
        r.warnings[1].starts_with("1 of 2 interacting users have no row in the user features (e.g. \"2\")")
    );

    let log = tmp.path().join("log.csv");
    std::fs::write(&log, "user,item\nu1,a\nu2,a\nu3,b\n").unwrap();
    let users = tmp.path().join("users.csv");
    std::fs::write(&users, "user,country\nu1,fr\n").unwrap();
    let mut o = ImportOptions::new(ImportFormat::Csv);
    o.users = Some(users);
    let r = import(&log, &tmp.path().join("ds2"), &o, &NoProgress).unwrap();
    // No item side file was given: items without features are expected, not warned about.
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0]
        .starts_with("2 of 3 interacting users have no row in the user features (e.g. \"u2\", \"u3\")"));
}
