//! The serving tables a dataset carries (`serving/`): written by split (and import), mapped by
//! [`Dataset::load_for_serving`] with the same contents as tables built from the training part,
//! ignored once the dataset changes, and damage caught where every byte is verified.

use std::fs;

use twotower_data::{
    split, synth, write_serving, Dataset, NoProgress, ServingTables, SplitOptions, SynthOptions, SERVING_DIR,
    SERVING_FILE,
};

fn small() -> SynthOptions {
    SynthOptions {
        users: 150,
        items: 120,
        interactions: 5_000,
        clusters: 6,
        seed: 11,
        ..SynthOptions::default()
    }
}

fn same(a: &ServingTables, b: &ServingTables) {
    assert_eq!(
        (a.users(), a.items(), a.total()),
        (b.users(), b.items(), b.total())
    );
    for u in 0..a.users() as u32 {
        assert_eq!(a.seen(u), b.seen(u), "user {u}");
        assert_eq!(a.history(u), b.history(u), "user {u}");
    }
    for i in 0..a.items() as u32 {
        assert_eq!(a.count(i), b.count(i));
    }
    assert_eq!(a.popular().collect::<Vec<_>>(), b.popular().collect::<Vec<_>>());
}

#[test]
fn split_datasets_carry_mapped_serving_tables_equal_to_built_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    synth(&d, &small(), &NoProgress).unwrap();
    split(&d, &SplitOptions::default(), &NoProgress).unwrap();
    let (ds, mapped) = Dataset::load_for_serving(&d).unwrap();
    assert!(mapped.is_mapped(), "split wrote serving/ and an open maps it");
    assert!(
        ds.interactions.is_empty() && ds.train.is_none(),
        "no interaction was read"
    );
    let full = Dataset::load_training(&d).unwrap();
    let built = ServingTables::build(full.training(), full.users.len(), full.items.len());
    same(&mapped, &built);
    assert_eq!(
        (ds.users.ids(), ds.items.ids()),
        (full.users.ids(), full.items.ids())
    );

    // Without the artifact (a dataset written by an older build): built from the training part,
    // same answers; `write_serving` adds it again without changing the dataset's fingerprint.
    fs::remove_dir_all(d.join(SERVING_DIR)).unwrap();
    let (_, rebuilt) = Dataset::load_for_serving(&d).unwrap();
    assert!(!rebuilt.is_mapped());
    same(&rebuilt, &built);
    write_serving(&d).unwrap();
    assert_eq!(Dataset::load(&d).unwrap().fingerprint(), full.fingerprint());
    assert!(Dataset::load_for_serving(&d).unwrap().1.is_mapped());

    // Split again (another dataset version): the old tables are not carried over as current.
    split(
        &d,
        &SplitOptions {
            holdout: twotower_data::Holdout::Fraction(0.4),
            ..SplitOptions::default()
        },
        &NoProgress,
    )
    .unwrap();
    let (_, again) = Dataset::load_for_serving(&d).unwrap();
    let full = Dataset::load_training(&d).unwrap();
    same(
        &again,
        &ServingTables::build(full.training(), full.users.len(), full.items.len()),
    );
}

#[test]
fn a_damaged_serving_file_is_caught_by_a_full_load_and_a_truncated_one_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    synth(&d, &small(), &NoProgress).unwrap();
    assert!(
        !d.join(SERVING_DIR).exists(),
        "synth streams; it leaves the tables to split"
    );
    write_serving(&d).unwrap();
    let p = d.join(SERVING_DIR).join(SERVING_FILE);
    let orig = fs::read(&p).unwrap();
    let mut flipped = orig.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x21;
    fs::write(&p, &flipped).unwrap();
    // An open maps it without hashing (and never panics on what it reads) ...
    let (ds, t) = Dataset::load_for_serving(&d).unwrap();
    for u in 0..ds.users.len() as u32 {
        let _ = (t.seen(u), t.history(u));
    }
    let _ = t.popular().count();
    // ... a full load (training, stats) verifies every byte and names the file.
    let err = Dataset::load(&d).unwrap_err().to_string();
    assert!(err.contains(SERVING_FILE) && err.contains("sha256"), "{err}");
    // Truncated: the size check of every open names it.
    fs::write(&p, &orig[..orig.len() - 16]).unwrap();
    let err = Dataset::load_for_serving(&d).unwrap_err().to_string();
    assert!(err.contains(SERVING_FILE) && err.contains("size"), "{err}");
    // Rewritten: fine again.
    write_serving(&d).unwrap();
    Dataset::load(&d).unwrap();
}
