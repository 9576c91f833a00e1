//! MovieLens importers on fixtures written here (Latin-1 bytes included), and on the real data in
//! ../shared/data when it is present (exact published counts; required in CI).

use std::path::Path;

use twotower_data::{import, Dataset, ImportFormat, ImportOptions, NoProgress};

mod common;
use common::shared;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn ml1m_fixture(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    write(
        dir,
        "movies.dat",
        b"1::Toy Story (1995)::Animation|Children's|Comedy\n73::Mis\xe9rables, Les (1995)::Drama|Musical\n99::Never Rated (1990)::Drama\n",
    );
    write(
        dir,
        "users.dat",
        b"1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n",
    );
    // user 2 rates 73 twice: the later rating (ts 20) is kept.
    write(
        dir,
        "ratings.dat",
        b"1::1::5::978300760\n1::73::3::978302109\n2::73::4::10\n2::73::2::20\n2::1::1::5\n",
    );
}

#[test]
fn movielens_1m_fixture_imports_with_features() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("ml-1m");
    ml1m_fixture(&src);
    let out = tmp.path().join("ds");
    let r = import(
        &src,
        &out,
        &ImportOptions::new(ImportFormat::Movielens1m),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(r.interactions, 4);
    assert_eq!(r.cleaned.duplicates, 1);
    assert_eq!((r.interacting_users, r.interacting_items), (2, 2));
    assert_eq!((r.user_rows, r.item_rows), (3, 3));

    let ds = Dataset::load(&out).unwrap();
    assert_eq!(ds.users.len(), 3); // user 3 has features but no ratings
    assert_eq!(ds.items.len(), 3); // item 99 is a cold item
    let mis = ds.items.get("73").unwrap() as usize;
    assert_eq!(
        ds.item_table.titles[mis].as_deref(),
        Some("Misérables, Les (1995)")
    );
    let tokens: Vec<&str> = ds
        .item_table
        .title_tokens
        .row(mis)
        .iter()
        .map(|&t| ds.item_table.title_tokens.vocab.id(t))
        .collect();
    assert_eq!(tokens, vec!["misérables", "les", "1995"]);
    let genres: Vec<&str> = ds
        .item_table
        .genres
        .row(mis)
        .iter()
        .map(|&g| ds.item_table.genres.vocab.id(g))
        .collect();
    assert_eq!(genres, vec!["Drama", "Musical"]);
    let year = &ds.item_table.categorical[0];
    assert_eq!(year.name, "year");
    assert_eq!(year.get(mis), Some("1995"));
    let names: Vec<&str> = ds
        .user_table
        .categorical
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, vec!["gender", "age", "occupation", "zip_region"]);
    let u2 = ds.users.get("2").unwrap() as usize;
    let vals: Vec<Option<&str>> = ds.user_table.categorical.iter().map(|c| c.get(u2)).collect();
    assert_eq!(
        vals,
        vec![Some("M"), Some("56+"), Some("self-employed"), Some("7")]
    );
    // The kept duplicate is the latest one (rating 2 at ts 20).
    let x = &ds.interactions;
    let r = (0..x.len())
        .find(|&r| x.user[r] as usize == u2 && x.item[r] as usize == mis)
        .unwrap();
    assert_eq!((x.weight[r], x.ts[r]), (2.0, 20));
    // Rows are ordered by user then time.
    assert!((1..x.len()).all(|r| (x.user[r - 1], x.ts[r - 1]) <= (x.user[r], x.ts[r])));
    assert_eq!(ds.manifest.counts["interactions"], 4);
    assert_eq!(ds.manifest.counts["users"], 3);
    assert_eq!(ds.manifest.counts["items"], 3);
}

#[test]
fn movielens_100k_fixture_imports_with_features() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("ml-100k");
    std::fs::create_dir_all(&src).unwrap();
    write(
        &src,
        "u.data",
        b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t881250950\n",
    );
    let mut items = Vec::new();
    items
        .extend_from_slice(b"242|Kolya (1996)|24-Jan-1997||http://x|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n");
    items.extend_from_slice(
        b"302|L.A. Confidential (1997)|01-Jan-1997||http://x|0|0|0|0|0|0|1|0|0|0|1|0|0|1|0|0|1|0|0\n",
    );
    items.extend_from_slice(b"1300|J\xe9fferson (1995)|||http://x|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0\n");
    write(&src, "u.item", &items);
    write(
        &src,
        "u.user",
        b"196|49|M|writer|55105\n186|39|F|executive|00000\n",
    );
    let out = tmp.path().join("ds");
    let r = import(
        &src,
        &out,
        &ImportOptions::new(ImportFormat::Movielens100k),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(r.interactions, 3);
    let ds = Dataset::load(&out).unwrap();
    assert_eq!(ds.items.len(), 3);
    let j = ds.items.get("1300").unwrap() as usize;
    assert_eq!(ds.item_table.titles[j].as_deref(), Some("Jéfferson (1995)"));
    // No release date: the year comes from the title.
    assert_eq!(ds.item_table.categorical[0].get(j), Some("1995"));
    let k = ds.items.get("242").unwrap() as usize;
    assert_eq!(ds.item_table.categorical[0].get(k), Some("1997"));
    let u = ds.users.get("196").unwrap() as usize;
    assert_eq!(ds.user_table.categorical[1].get(u), Some("45-49"));
    assert_eq!(ds.user_table.categorical[3].get(u), Some("5"));
}

#[test]
fn real_movielens_100k_exact_counts() {
    let Some(src) = shared("ml-100k") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let r = import(
        &src,
        &out,
        &ImportOptions::new(ImportFormat::Movielens100k),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(
        (r.interactions, r.interacting_users, r.interacting_items),
        (100_000, 943, 1_682)
    );
    let ds = Dataset::load(&out).unwrap();
    assert_eq!(ds.interactions.len(), 100_000);
    assert_eq!((ds.users.len(), ds.items.len()), (943, 1_682));
    assert_eq!(ds.item_table.genres.vocab.len(), 19);
    let titles: Vec<&str> = ds
        .item_table
        .titles
        .iter()
        .flatten()
        .map(|s| s.as_str())
        .collect();
    assert!(titles.contains(&"Toy Story (1995)"));
    // Latin-1 decoded: some title has an accented letter, none has a replacement character.
    assert!(titles.iter().any(|t| t.contains('é')));
    assert!(!titles.iter().any(|t| t.contains('\u{fffd}')));
}

#[test]
fn real_movielens_1m_partial_exact_counts() {
    let Some(src) = shared("ml-1m-partial") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let r = import(
        &src,
        &out,
        &ImportOptions::new(ImportFormat::Movielens1m),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(
        (r.interactions, r.interacting_users, r.interacting_items),
        (487_650, 2_999, 3_615)
    );
    assert_eq!((r.item_rows, r.user_rows), (3_883, 6_040));
    let ds = Dataset::load(&out).unwrap();
    assert_eq!(ds.interactions.len(), 487_650);
    assert_eq!((ds.users.len(), ds.items.len()), (6_040, 3_883));
    let i = ds.items.get("73").unwrap() as usize;
    assert_eq!(ds.item_table.titles[i].as_deref(), Some("Misérables, Les (1995)"));
    assert_eq!(ds.item_table.genres.vocab.len(), 18);
}
