//! Training-step benchmarks: id-only throughput at 1 and 2 threads on an ML-100K-sized synthetic log,
//! step time at 10 k vs 1 M users/items (the sparse tables make it flat), and the fused in-batch softmax
//! against the stock candle log-softmax path at batch 4096.
//!
//! `cargo bench -p twotower-towers --bench train_step`; set `TWOTOWER_BENCH_BIG=0` to skip the 1 M case.

use candle_core::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use twotower_towers::SampledSoftmax;
use twotower_towers::StepBench;

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap()
}

fn id_only_throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("id_only_ml100k_shape");
    g.throughput(Throughput::Elements(1024));
    g.sample_size(30);
    for threads in [1usize, 2] {
        let p = pool(threads);
        let mut b = p.install(|| StepBench::new(943, 1682, 64, 1024, None).unwrap());
        g.bench_function(format!("step_b1024_d64_{threads}t"), |bench| {
            bench.iter(|| p.install(|| b.step().unwrap()))
        });
    }
    g.finish();
}

fn step_vs_catalogue(c: &mut Criterion) {
    let mut g = c.benchmark_group("step_vs_catalogue");
    g.sample_size(20);
    let mut sizes = vec![10_000usize];
    if std::env::var("TWOTOWER_BENCH_BIG").map_or(true, |v| v != "0") {
        sizes.push(1_000_000);
    }
    for n in sizes {
        let mut b = StepBench::new(n, n, 64, 1024, None).unwrap();
        g.bench_function(format!("{n}_users_items"), |bench| {
            bench.iter(|| b.step().unwrap())
        });
    }
    g.finish();
}

fn fused_vs_stock(c: &mut Criterion) {
    let b = 4096;
    let dev = Device::Cpu;
    let items: Vec<u32> = (0..b as u32).map(|i| i % 3000).collect();
    let logits: Vec<f32> = (0..b * b)
        .map(|i| ((i * 2654435761usize) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let spec = SampledSoftmax {
        temperature: 0.1,
        row_items: items.clone(),
        col_items: items,
        log_q: (0..b).map(|i| -((i % 50) as f32) * 0.1 - 3.0).collect(),
        remove_accidental_hits: true,
        row_masks: Vec::new(),
    };
    let mut g = c.benchmark_group("loss_b4096");
    g.sample_size(10);
    g.bench_function("fused", |bench| {
        bench.iter(|| {
            let v = Var::from_slice(&logits, (b, b), &dev).unwrap();
            let l = spec.clone().loss(v.as_tensor()).unwrap();
            l.backward().unwrap()
        })
    });
    g.bench_function("stock_log_softmax", |bench| {
        bench.iter(|| {
            let v = Var::from_slice(&logits, (b, b), &dev).unwrap();
            let l: Tensor = spec.stock_loss(v.as_tensor()).unwrap();
            l.backward().unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, id_only_throughput, step_vs_catalogue, fused_vs_stock);
criterion_main!(benches);
