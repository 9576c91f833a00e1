//! Criterion benches of the paths training waits on: `Dataset::load`, per-user histories and batch
//! shuffling, on a synthetic dataset of 500k interactions (about ML-1M-partial's size), plus the
//! ML-1M importer when ../shared/data/ml-1m-partial is present.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use twotower_data::{
    import, synth, Dataset, ImportFormat, ImportOptions, NoProgress, ShuffledBatches, SynthOptions,
    UserHistories,
};

fn benches(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let syn = tmp.path().join("syn");
    let o = SynthOptions {
        users: 6_000,
        items: 4_000,
        interactions: 500_000,
        ..SynthOptions::default()
    };
    synth(&syn, &o, &NoProgress).unwrap();
    let mut g = c.benchmark_group("data");
    g.sample_size(10);
    g.bench_function("load_500k", |b| b.iter(|| Dataset::load(&syn).unwrap()));
    let ds = Dataset::load(&syn).unwrap();
    g.bench_function("histories_500k", |b| {
        b.iter(|| UserHistories::build(&ds.interactions, ds.users.len()))
    });
    g.bench_function("shuffle_500k", |b| {
        b.iter(|| ShuffledBatches::new(ds.interactions.len(), 1024, 1, 2).count())
    });
    let ml = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ml-1m-partial");
    if ml.is_dir() {
        let out = tmp.path().join("ml");
        let opts = ImportOptions::new(ImportFormat::Movielens1m);
        g.bench_function("import_ml1m_partial", |b| {
            b.iter(|| import(&ml, &out, &opts, &NoProgress).unwrap())
        });
        g.bench_function("load_ml1m_partial", |b| b.iter(|| Dataset::load(&out).unwrap()));
    }
    g.finish();
}

criterion_group!(data, benches);
criterion_main!(data);
