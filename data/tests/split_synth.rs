//! Split and synth end to end through the dataset directory.

use std::collections::HashMap;

use twotower_data::{
    split, synth, Dataset, Holdout, NoProgress, SplitOptions, SplitStrategy, SynthOptions, UserHistories,
};

fn small() -> SynthOptions {
    SynthOptions {
        users: 300,
        items: 200,
        interactions: 12_000,
        clusters: 8,
        seed: 5,
        ..SynthOptions::default()
    }
}

#[test]
fn synth_is_deterministic_and_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    let r = synth(&a, &small(), &NoProgress).unwrap();
    assert_eq!(r.interactions, 12_000);
    synth(&b, &small(), &NoProgress).unwrap();
    synth(&c, &SynthOptions { seed: 6, ..small() }, &NoProgress).unwrap();
    let (da, db, dc) = (
        Dataset::load(&a).unwrap(),
        Dataset::load(&b).unwrap(),
        Dataset::load(&c).unwrap(),
    );
    assert_eq!(da.fingerprint(), db.fingerprint());
    assert_ne!(da.fingerprint(), dc.fingerprint());
    assert_eq!(da.interactions.len(), 12_000);
    assert_eq!((da.users.len(), da.items.len()), (300, 200));
    assert!(da.item_table.titles.iter().all(Option::is_some));
    assert_eq!(da.item_table.categorical[0].name, "era");
    assert_eq!(da.user_table.categorical.len(), 2);
    // Written in canonical order: by user, then time.
    let x = &da.interactions;
    assert!((1..x.len()).all(|r| (x.user[r - 1], x.ts[r - 1]) <= (x.user[r], x.ts[r])));
}

#[test]
fn synth_has_planted_structure() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    synth(&d, &small(), &NoProgress).unwrap();
    let ds = Dataset::load(&d).unwrap();
    let x = &ds.interactions;
    // Popularity skew: the top 10% of items take far more than 10% of interactions.
    let mut counts = x.item_counts(ds.items.len());
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let top: u32 = counts[..ds.items.len() / 10].iter().sum();
    assert!(
        top as f64 / x.len() as f64 > 0.3,
        "top-10% share {}",
        top as f64 / x.len() as f64
    );
    // Cluster affinity: a user's title tokens concentrate (cluster-specific words), far above what
    // users with random items would show.
    let t = &ds.item_table.title_tokens;
    let hist = UserHistories::build(x, ds.users.len());
    let share = |items: &[u32]| -> f64 {
        let mut c: HashMap<u32, usize> = HashMap::new();
        for &i in items {
            for &tok in t.row(i as usize) {
                *c.entry(tok).or_default() += 1;
            }
        }
        *c.values().max().unwrap_or(&0) as f64 / items.len().max(1) as f64
    };
    let mut real = 0.0;
    let mut shuffled = 0.0;
    let mut n = 0.0;
    for u in 0..ds.users.len() as u32 {
        let items = hist.history(u).1;
        if items.len() < 20 {
            continue;
        }
        real += share(items);
        // Same size, items spread over the catalog.
        let fake: Vec<u32> = (0..items.len() as u32)
            .map(|k| (k * 7919 + u * 31) % ds.items.len() as u32)
            .collect();
        shuffled += share(&fake);
        n += 1.0;
    }
    assert!(n > 50.0);
    assert!(
        real / n > 2.0 * shuffled / n,
        "real {} vs spread {}",
        real / n,
        shuffled / n
    );
}

#[test]
fn temporal_split_recorded_and_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    synth(&d, &small(), &NoProgress).unwrap();
    let before = Dataset::load(&d).unwrap().fingerprint();
    let r = split(&d, &SplitOptions::default(), &NoProgress).unwrap();
    assert_eq!(r.train + r.test, 12_000);
    let ds = Dataset::load(&d).unwrap();
    assert!(ds.is_split());
    assert_ne!(ds.fingerprint(), before);
    let (tr, te) = (ds.train.as_ref().unwrap(), ds.test.as_ref().unwrap());
    assert_eq!((tr.len() as u64, te.len() as u64), (r.train, r.test));
    assert_eq!(ds.training().len(), tr.len());
    assert_eq!(ds.manifest.counts["test"], r.test);
    assert_eq!(
        ds.manifest.extra["split"]["options"]["strategy"]["strategy"],
        "temporal"
    );
    let n = ds.users.len();
    let mut last_train = vec![i64::MIN; n];
    for r in 0..tr.len() {
        let u = tr.user[r] as usize;
        last_train[u] = last_train[u].max(tr.ts[r]);
    }
    for r in 0..te.len() {
        assert!(te.ts[r] >= last_train[te.user[r] as usize]);
    }
    // Every user with ≥ 2 interactions has a test interaction.
    let all = ds.interactions.user_counts(n);
    let test_users = te.user_counts(n);
    for u in 0..n {
        assert_eq!(all[u] >= 2, test_users[u] > 0, "user {u}");
    }
    // Re-splitting replaces the old split; random split is reproducible by seed.
    let o = SplitOptions {
        strategy: SplitStrategy::Random { seed: 3 },
        holdout: Holdout::LastN(2),
        min_user_interactions: 5,
    };
    let r1 = split(&d, &o, &NoProgress).unwrap();
    let f1 = Dataset::load(&d).unwrap().fingerprint();
    let r2 = split(&d, &o, &NoProgress).unwrap();
    assert_eq!(r1, r2);
    assert_eq!(Dataset::load(&d).unwrap().fingerprint(), f1);
    let ds = Dataset::load(&d).unwrap();
    assert!(ds.test.as_ref().unwrap().user_counts(n).iter().all(|&c| c <= 2));
    // Only the dataset directory is there: no staging leftovers.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn load_training_reads_only_the_tables_and_the_training_part() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("ds");
    synth(&d, &small(), &NoProgress).unwrap();
    // Unsplit: the whole log is the training data.
    let whole = Dataset::load(&d).unwrap();
    let lean = Dataset::load_training(&d).unwrap();
    assert_eq!(lean.interactions, whole.interactions);
    split(&d, &SplitOptions::default(), &NoProgress).unwrap();
    let mut full = Dataset::load(&d).unwrap();
    full.keep_only_training();
    let lean = Dataset::load_training(&d).unwrap();
    assert_eq!(lean.users.ids(), full.users.ids());
    assert_eq!(lean.items.ids(), full.items.ids());
    assert_eq!(lean.train, full.train);
    assert_eq!(lean.item_table, full.item_table);
    assert_eq!(lean.user_table, full.user_table);
    assert!(lean.interactions.is_empty() && lean.test.is_none());
    assert_eq!(lean.fingerprint(), full.fingerprint());

    // The test part is neither read nor checked by it; `load` still refuses the damage, and so
    // does `load_training` when the damage is in what it reads.
    let test = d.join("test.parquet");
    let mut bytes = std::fs::read(&test).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&test, &bytes).unwrap();
    assert!(Dataset::load(&d)
        .unwrap_err()
        .to_string()
        .contains("test.parquet"));
    assert_eq!(Dataset::load_training(&d).unwrap().train, full.train);
    let train = d.join("train.parquet");
    let mut bytes = std::fs::read(&train).unwrap();
    let at = mid.min(bytes.len() - 1);
    bytes[at] ^= 0xff;
    std::fs::write(&train, &bytes).unwrap();
    assert!(Dataset::load_training(&d)
        .unwrap_err()
        .to_string()
        .contains("train.parquet"));
}
