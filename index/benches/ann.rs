//! Exact and HNSW search throughput on 100k × 64 clustered unit vectors (1000 gaussian centres),
//! and graph build time on 20k. Recall per `ef` and the 100k build time come from
//! `examples/ann_tune.rs`, which prints them (criterion measures time, not recall).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use twotower_data::progress::NoProgress;
use twotower_index::synthetic::clustered_unit_vectors;
use twotower_index::{ExactIndex, HnswIndex, HnswParams, VectorIndex};

const N: usize = 100_000;
const DIM: usize = 64;
const NQ: usize = 1000;

fn data() -> (Vec<f32>, Vec<f32>) {
    let mut all = clustered_unit_vectors(N + NQ, DIM, 1000, 0.5, 1);
    let q = all.split_off(N * DIM);
    (all, q)
}

fn exact(c: &mut Criterion) {
    let (v, q) = data();
    let idx = ExactIndex::from_rows(DIM, &v, None).unwrap();
    let mut g = c.benchmark_group("exact_100k_x64");
    g.sample_size(10);
    g.throughput(Throughput::Elements(NQ as u64));
    g.bench_function("batched_1000_queries_k10", |b| {
        b.iter(|| idx.search_batch(&q, 10, None).unwrap())
    });
    g.throughput(Throughput::Elements(100));
    g.bench_function("single_100_queries_k10", |b| {
        b.iter(|| {
            for qq in q.chunks_exact(DIM).take(100) {
                idx.search(qq, 10, None).unwrap();
            }
        })
    });
    g.finish();
}

fn hnsw(c: &mut Criterion) {
    let (v, q) = data();
    let h = HnswIndex::build(DIM, &v, HnswParams::default(), &NoProgress).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let mut g = c.benchmark_group("hnsw_100k_x64_search_1thread");
    g.sample_size(10);
    g.throughput(Throughput::Elements(NQ as u64));
    for ef in [16, 32, 64, 128] {
        g.bench_with_input(BenchmarkId::from_parameter(ef), &ef, |b, &ef| {
            b.iter(|| {
                pool.install(|| {
                    for qq in q.chunks_exact(DIM) {
                        h.search_with_ef(qq, 10, ef, None).unwrap();
                    }
                })
            })
        });
    }
    g.finish();

    let small = &v[..20_000 * DIM];
    let mut g = c.benchmark_group("hnsw_build_20k_x64");
    g.sample_size(10);
    g.throughput(Throughput::Elements(20_000));
    g.bench_function("default_params_all_cores", |b| {
        b.iter(|| HnswIndex::build(DIM, small, HnswParams::default(), &NoProgress).unwrap())
    });
    g.finish();
}

criterion_group!(benches, exact, hnsw);
criterion_main!(benches);
