//! `data import --append-to`: old dense ids kept, new ids appended, the same rows as an import of
//! the concatenated log under every dedup policy, side rows for new ids only, the append recorded,
//! a split dropped, and `--test-from last-append` holding out exactly the appended rows.

use std::path::Path;

use proptest::prelude::*;
use twotower_data::{
    append, import, last_append_start, split, ColumnMap, Dataset, Dedup, ImportFormat, ImportOptions,
    NoProgress, SplitOptions, SplitStrategy,
};

fn opts(dedup: Dedup) -> ImportOptions {
    let mut o = ImportOptions::new(ImportFormat::Csv);
    o.columns = ColumnMap {
        user: "user".into(),
        item: "item".into(),
        weight: Some("rating".into()),
        time: Some("ts".into()),
    };
    o.dedup = dedup;
    o
}

fn csv(path: &Path, rows: &[(String, String, f32, i64)]) {
    let mut s = String::from("user,item,rating,ts\n");
    for (u, i, r, t) in rows {
        s.push_str(&format!("{u},{i},{r},{t}\n"));
    }
    std::fs::write(path, s).unwrap();
}

/// Every interaction as (user id, item id, weight, ts), sorted.
fn rows_of(ds: &Dataset) -> Vec<(String, String, u32, i64)> {
    let x = &ds.interactions;
    let mut v: Vec<_> = (0..x.len())
        .map(|r| {
            (
                ds.users.id(x.user[r]).to_string(),
                ds.items.id(x.item[r]).to_string(),
                x.weight[r].to_bits(),
                x.ts[r],
            )
        })
        .collect();
    v.sort();
    v
}

fn log(n: usize, users: u32, items: u32, t0: i64, seed: u64) -> Vec<(String, String, f32, i64)> {
    let mut s = seed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as u32
    };
    (0..n)
        .map(|k| {
            let u = next() % users;
            let i = next() % items;
            (
                format!("u{u}"),
                format!("i{i}"),
                (1 + next() % 5) as f32,
                t0 + (next() % 50) as i64 + k as i64 / 4,
            )
        })
        .collect()
}

#[test]
fn append_keeps_dense_ids_and_matches_an_import_of_the_whole_log() {
    for dedup in [Dedup::KeepAll, Dedup::Latest, Dedup::Earliest] {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, all) = (
            tmp.path().join("a.csv"),
            tmp.path().join("b.csv"),
            tmp.path().join("all.csv"),
        );
        let old = log(400, 30, 40, 1_000, 1);
        // The new day: old users and items, and new ones (u30.., i40..).
        let new = log(150, 45, 60, 1_100, 2);
        csv(&a, &old);
        csv(&b, &new);
        csv(&all, &[old.clone(), new.clone()].concat());
        let ds_dir = tmp.path().join("ds");
        import(&a, &ds_dir, &opts(dedup), &NoProgress).unwrap();
        let before = Dataset::load(&ds_dir).unwrap();
        let r = append(&b, &ds_dir, &opts(dedup), &NoProgress).unwrap();
        let after = Dataset::load(&ds_dir).unwrap();
        let whole_dir = tmp.path().join("whole");
        import(&all, &whole_dir, &opts(dedup), &NoProgress).unwrap();
        let whole = Dataset::load(&whole_dir).unwrap();

        // Old ids keep their dense ids; new ones come after them.
        for (k, id) in before.users.ids().iter().enumerate() {
            assert_eq!(after.users.get(id), Some(k as u32), "{dedup:?}: user {id}");
        }
        for (k, id) in before.items.ids().iter().enumerate() {
            assert_eq!(after.items.get(id), Some(k as u32), "{dedup:?}: item {id}");
        }
        assert_eq!(after.users.len() as u64, before.users.len() as u64 + r.new_users);
        assert_eq!(after.items.len() as u64, before.items.len() as u64 + r.new_items);
        assert!(r.new_users > 0 && r.new_items > 0);
        // The same rows, users and items as importing the concatenated log.
        assert_eq!(rows_of(&after), rows_of(&whole), "{dedup:?}");
        assert_eq!(after.users.len(), whole.users.len());
        assert_eq!(after.items.len(), whole.items.len());
        assert_eq!(r.interactions as usize, whole.interactions.len());
        assert_eq!(r.rows_read, new.len() as u64);
        if dedup == Dedup::KeepAll {
            assert_eq!(r.rows_added, new.len() as u64);
            assert_eq!(r.duplicates, 0);
        }
        // The append is recorded, with its time range.
        let appends = &after.manifest.extra["appends"];
        assert_eq!(appends.as_array().unwrap().len(), 1);
        assert_eq!(appends[0]["report"]["rows_read"], new.len() as u64);
        let lo = new.iter().map(|r| r.3).min().unwrap();
        if dedup == Dedup::KeepAll {
            assert_eq!(last_append_start(&ds_dir).unwrap(), lo);
        }
        assert_eq!(after.manifest.counts["interactions"], r.interactions);
    }
}

#[test]
fn a_keep_all_append_writes_only_the_new_rows_as_the_next_part() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a.csv"),
        tmp.path().join("b.csv"),
        tmp.path().join("c.csv"),
    );
    csv(&a, &log(300, 20, 30, 1_000, 5));
    csv(&b, &log(50, 20, 30, 2_000, 6));
    csv(&c, &log(50, 25, 30, 3_000, 7));
    let ds_dir = tmp.path().join("ds");
    import(&a, &ds_dir, &opts(Dedup::KeepAll), &NoProgress).unwrap();
    let first = std::fs::read(ds_dir.join("interactions.parquet")).unwrap();
    let items = std::fs::read(ds_dir.join("items.parquet")).unwrap();
    append(&b, &ds_dir, &opts(Dedup::KeepAll), &NoProgress).unwrap();
    // No new id: neither table is rewritten; the old rows stay where they were.
    assert_eq!(std::fs::read(ds_dir.join("interactions.parquet")).unwrap(), first);
    assert_eq!(std::fs::read(ds_dir.join("items.parquet")).unwrap(), items);
    let part1 = std::fs::read(ds_dir.join("interactions-0001.parquet")).unwrap();
    let r = append(&c, &ds_dir, &opts(Dedup::KeepAll), &NoProgress).unwrap();
    assert!(r.new_users > 0);
    assert_eq!(
        std::fs::read(ds_dir.join("interactions-0001.parquet")).unwrap(),
        part1
    );
    assert!(ds_dir.join("interactions-0002.parquet").is_file());
    let ds = Dataset::load(&ds_dir).unwrap();
    assert_eq!(ds.interactions.len(), 400);
    assert_eq!(ds.manifest.counts["interactions"], 400);
    assert_eq!(ds.manifest.extra["appends"][1]["rewritten"], false);
    // A latest-dedup append rewrites the dataset as one part again, with the same rows as an
    // import of everything.
    append(&c, &ds_dir, &opts(Dedup::Latest), &NoProgress).unwrap();
    assert!(!ds_dir.join("interactions-0001.parquet").exists());
    let whole = tmp.path().join("all.csv");
    csv(
        &whole,
        &[
            log(300, 20, 30, 1_000, 5),
            log(50, 20, 30, 2_000, 6),
            log(50, 25, 30, 3_000, 7),
            log(50, 25, 30, 3_000, 7),
        ]
        .concat(),
    );
    let w = tmp.path().join("whole");
    import(&whole, &w, &opts(Dedup::Latest), &NoProgress).unwrap();
    assert_eq!(
        rows_of(&Dataset::load(&ds_dir).unwrap()),
        rows_of(&Dataset::load(&w).unwrap())
    );
}

#[test]
fn append_drops_a_split_and_test_from_last_append_holds_out_the_new_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.csv"), tmp.path().join("b.csv"));
    csv(&a, &log(300, 20, 30, 1_000, 3));
    let new = log(80, 25, 35, 5_000, 4);
    csv(&b, &new);
    let ds_dir = tmp.path().join("ds");
    import(&a, &ds_dir, &opts(Dedup::KeepAll), &NoProgress).unwrap();
    split(&ds_dir, &SplitOptions::default(), &NoProgress).unwrap();
    assert!(Dataset::load(&ds_dir).unwrap().is_split());
    assert!(last_append_start(&ds_dir).is_err(), "no append yet");
    let r = append(&b, &ds_dir, &opts(Dedup::KeepAll), &NoProgress).unwrap();
    assert!(r.split_dropped);
    let ds = Dataset::load(&ds_dir).unwrap();
    assert!(!ds.is_split(), "a split of the old log is dropped");
    let t = last_append_start(&ds_dir).unwrap();
    assert_eq!(t, 5_000 + new.iter().map(|r| r.3 - 5_000).min().unwrap());
    let o = SplitOptions {
        strategy: SplitStrategy::From { time: t },
        ..SplitOptions::default()
    };
    let rep = split(&ds_dir, &o, &NoProgress).unwrap();
    assert_eq!(rep.test, new.len() as u64, "exactly the appended rows are test");
    let ds = Dataset::load(&ds_dir).unwrap();
    assert!(ds.test.as_ref().unwrap().ts.iter().all(|&x| x >= t));
    assert!(ds.train.as_ref().unwrap().ts.iter().all(|&x| x < t));
}

#[test]
fn side_rows_are_added_for_new_ids_and_kept_for_old_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let items0 = tmp.path().join("items0.csv");
    std::fs::write(&items0, "item,title,genres,brand\ni1,One,A|B,x\ni2,Two,B,y\n").unwrap();
    let items1 = tmp.path().join("items1.csv");
    std::fs::write(
        &items1,
        "item,title,genres,brand\ni2,Changed,C,z\ni9,Nine,C,w\ni10,Ten,,\n",
    )
    .unwrap();
    let (a, b) = (tmp.path().join("a.csv"), tmp.path().join("b.csv"));
    std::fs::write(&a, "user,item,rating,ts\nu1,i1,5,1\nu1,i2,4,2\n").unwrap();
    std::fs::write(&b, "user,item,rating,ts\nu2,i9,5,3\nu2,i11,4,4\n").unwrap();
    let ds_dir = tmp.path().join("ds");
    let mut o = opts(Dedup::Latest);
    o.items = Some(items0);
    import(&a, &ds_dir, &o, &NoProgress).unwrap();
    o.items = Some(items1);
    let r = append(&b, &ds_dir, &o, &NoProgress).unwrap();
    assert_eq!(r.side_rows_kept_as_they_were, 1, "i2 was known");
    // i9 and i10 from the side file (i10 cold), i11 from the log.
    assert_eq!(r.new_items, 3);
    let ds = Dataset::load(&ds_dir).unwrap();
    let ids: Vec<&str> = ds.items.ids().iter().map(String::as_str).collect();
    assert_eq!(ids, ["i1", "i2", "i9", "i10", "i11"]);
    let t = &ds.item_table;
    assert_eq!(
        t.titles[1].as_deref(),
        Some("Two"),
        "an old item's features are kept"
    );
    assert_eq!(t.titles[2].as_deref(), Some("Nine"));
    let brand = t.categorical.iter().find(|c| c.name == "brand").unwrap();
    assert_eq!(brand.get(2), Some("w"));

    // A side file with a column the dataset does not have is refused, naming it.
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, "item,colour\ni20,red\n").unwrap();
    o.items = Some(bad.clone());
    let e = append(&b, &ds_dir, &o, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("colour") && e.contains("bad.csv"), "{e}");
}

#[test]
fn append_refuses_what_it_cannot_do_and_leaves_the_dataset_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.csv");
    std::fs::write(&a, "user,item,rating,ts\nu1,i1,5,1\n").unwrap();
    let ds_dir = tmp.path().join("ds");
    import(&a, &ds_dir, &opts(Dedup::Latest), &NoProgress).unwrap();
    let manifest = std::fs::read(ds_dir.join("manifest.json")).unwrap();
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, "user,item,rating,ts\nu2,i2,5,1\nu3,i3,x,2\n").unwrap();
    let e = append(&bad, &ds_dir, &opts(Dedup::Latest), &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.csv:3") && e.contains("\"x\""), "{e}");
    let mut o = opts(Dedup::Latest);
    o.min_user_interactions = 2;
    let e = append(&a, &ds_dir, &o, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("--min-user-interactions"), "{e}");
    let e = append(&a, &tmp.path().join("nope"), &opts(Dedup::Latest), &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
    assert_eq!(std::fs::read(ds_dir.join("manifest.json")).unwrap(), manifest);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    /// Appending day after day gives the rows of one import of everything, and never moves an id.
    #[test]
    fn appends_in_any_cut_equal_one_import(seed in 0u64..1000, cuts in 1usize..4, keep_all in any::<bool>()) {
        let dedup = if keep_all { Dedup::KeepAll } else { Dedup::Latest };
        let tmp = tempfile::tempdir().unwrap();
        let all = log(240, 12, 15, 0, seed);
        let per = all.len() / (cuts + 1);
        let ds_dir = tmp.path().join("ds");
        let mut seen_users: Vec<String> = Vec::new();
        for k in 0..=cuts {
            let part = &all[k * per..if k == cuts { all.len() } else { (k + 1) * per }];
            let f = tmp.path().join(format!("p{k}.csv"));
            csv(&f, part);
            if k == 0 {
                import(&f, &ds_dir, &opts(dedup), &NoProgress).unwrap();
            } else {
                append(&f, &ds_dir, &opts(dedup), &NoProgress).unwrap();
            }
            let ds = Dataset::load(&ds_dir).unwrap();
            for (i, id) in seen_users.iter().enumerate() {
                prop_assert_eq!(ds.users.get(id), Some(i as u32));
            }
            seen_users = ds.users.ids().to_vec();
        }
        let f = tmp.path().join("all.csv");
        csv(&f, &all);
        let whole = tmp.path().join("whole");
        import(&f, &whole, &opts(dedup), &NoProgress).unwrap();
        prop_assert_eq!(rows_of(&Dataset::load(&ds_dir).unwrap()), rows_of(&Dataset::load(&whole).unwrap()));
    }
}
