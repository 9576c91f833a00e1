//! Build time, recall@10 and single-thread queries/s of the graph against the exact index on
//! clustered synthetic unit vectors, for tuning `m` / `ef_construction` / `ef_search` and for the
//! side-by-side with hnswlib (`--dump FILE` writes the vectors and queries as raw little-endian f32).
//! Builds the graph twice in one run, with the native builder and with hnsw_rs (`--no-hnsw-rs`
//! skips the latter), on the global rayon pool (`RAYON_NUM_THREADS` sizes it).
//!
//! `cargo run --release -p twotower-index --example ann_tune -- N DIM CENTRES SPREAD M EFC [--dump PREFIX] [--no-hnsw-rs] [--persist DIR]`

use std::io::Write;
use std::time::Instant;

use twotower_data::progress::NoProgress;
use twotower_index::synthetic::clustered_unit_vectors;
use twotower_index::{ExactIndex, Hit, HnswIndex, HnswParams, IndexDir, VectorIndex};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: &str| a.get(i).cloned().unwrap_or_else(|| d.to_string());
    let n: usize = arg(1, "100000").parse().unwrap();
    let dim: usize = arg(2, "64").parse().unwrap();
    let centres: usize = arg(3, "1000").parse().unwrap();
    let spread: f32 = arg(4, "0.5").parse().unwrap();
    let m: usize = arg(5, "16").parse().unwrap();
    let efc: usize = arg(6, "200").parse().unwrap();
    let nq = 2000;
    let v = clustered_unit_vectors(n, dim, centres, spread, 1);
    let q = clustered_unit_vectors(nq, dim, centres, spread, 2);
    // Same centres (same seed stream for centres) is not guaranteed across seeds; take queries
    // from held-out draws of the same mixture instead: the first nq rows of a larger draw.
    let all = clustered_unit_vectors(n + nq, dim, centres, spread, 1);
    let (v, q) = if centres > 0 {
        (all[..n * dim].to_vec(), all[n * dim..].to_vec())
    } else {
        (v, q)
    };
    if let Some(i) = a.iter().position(|s| s == "--dump") {
        let prefix = &a[i + 1];
        let write = |name: &str, data: &[f32]| {
            let mut f = std::fs::File::create(format!("{prefix}.{name}.f32")).unwrap();
            for x in data {
                f.write_all(&x.to_le_bytes()).unwrap();
            }
        };
        write("base", &v);
        write("query", &q);
    }
    let exact = ExactIndex::from_rows(dim, &v, None).unwrap();
    let t = Instant::now();
    let truth = exact.search_batch(&q, 10, None).unwrap();
    let exact_batch = nq as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for qq in q.chunks_exact(dim).take(500) {
        exact.search(qq, 10, None).unwrap();
    }
    let exact_single = 500.0 / t.elapsed().as_secs_f64();
    println!(
        "n={n} dim={dim} centres={centres} spread={spread} m={m} efc={efc} threads={}",
        rayon::current_num_threads()
    );
    println!("exact: batched {exact_batch:.0} q/s, single {exact_single:.0} q/s (all cores)");
    let params = HnswParams {
        m,
        ef_construction: efc,
        ef_search: 64,
    };
    let t = Instant::now();
    let h = HnswIndex::build(dim, &v, params, &NoProgress).unwrap();
    let native_s = t.elapsed().as_secs_f64();
    println!("build native: {native_s:.2} s");
    let reference = if a.iter().any(|s| s == "--no-hnsw-rs") {
        None
    } else {
        let t = Instant::now();
        let r = HnswIndex::build_with_hnsw_rs(dim, &v, params, &NoProgress).unwrap();
        let rs_s = t.elapsed().as_secs_f64();
        println!(
            "build hnsw_rs: {rs_s:.2} s (native is {:.2}x faster)",
            rs_s / native_s
        );
        Some(r)
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    // One thread, same queries: the native graph, the hnsw_rs graph through the flat search, and
    // the hnsw_rs graph through hnsw_rs's own search.
    let run = |search: &(dyn Fn(&[f32]) -> Vec<Hit> + Sync)| {
        pool.install(|| {
            let t = Instant::now();
            let mut found = 0;
            for (qq, want) in q.chunks_exact(dim).zip(&truth) {
                let got = search(qq);
                found += want.iter().filter(|w| got.iter().any(|g| g.row == w.row)).count();
            }
            (
                found as f64 / (10 * nq) as f64,
                nq as f64 / t.elapsed().as_secs_f64(),
            )
        })
    };
    println!("recall@10 / q/s (1 thread): native graph | hnsw_rs graph, flat search | hnsw_rs graph, hnsw_rs search");
    for ef in [10, 16, 24, 32, 48, 64, 96, 128, 200, 300] {
        let (r_nat, qps_nat) = run(&|qq| h.search_with_ef(qq, 10, ef, None).unwrap());
        let mut line = format!("ef={ef:4} native {r_nat:.4} {qps_nat:6.0}");
        if let Some(r) = &reference {
            let (r_flat, qps_flat) = run(&|qq| r.search_with_ef(qq, 10, ef, None).unwrap());
            let (r_ref, qps_ref) = run(&|qq| r.search_reference_with_ef(qq, 10, ef, None).unwrap());
            line += &format!(" | hnsw_rs+flat {r_flat:.4} {qps_flat:6.0} | hnsw_rs {r_ref:.4} {qps_ref:6.0}");
        }
        println!("{line}");
    }
    if let Some(i) = a.iter().position(|s| s == "--persist") {
        // Version write and load (manifest + checksums + parquet + hnsw_rs loader) times.
        let dir = IndexDir::new(&a[i + 1]);
        let ids: Vec<String> = (0..n).map(|i| format!("item{i}")).collect();
        let t = Instant::now();
        dir.build_version(&ids, &v, dim, params, "bench", &NoProgress)
            .unwrap();
        println!(
            "build_version (graph + write): {:.2} s",
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let loaded = dir.open_current(Some("bench")).unwrap();
        println!(
            "open_current (verify + load {} rows): {:.2} s",
            loaded.len(),
            t.elapsed().as_secs_f64()
        );
        let bytes: u64 = loaded.manifest().files.values().map(|f| f.bytes).sum();
        let t = Instant::now();
        loaded.manifest().verify(loaded.dir()).unwrap();
        println!(
            "  of which checksums over {:.0} MB: {:.2} s",
            bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
    }
}
