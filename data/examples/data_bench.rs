//! Timing and peak memory of the data layer's heavy paths, one per process so peak RSS is its own:
//!
//! ```text
//! cargo run --release -p twotower-data --example data_bench -- import-ml1m ../shared/data/ml-1m-partial /tmp/ml1m
//! cargo run --release -p twotower-data --example data_bench -- load /tmp/ml1m
//! cargo run --release -p twotower-data --example data_bench -- synth /tmp/syn 10000000 [users] [items]
//! cargo run --release -p twotower-data --example data_bench -- import csv|parquet SRC OUT [TIME_COL]
//! ```
//! `import` reads columns `user`, `item`, `weight` and the time column (default `ts`), as
//! `twotower data import --format csv|parquet SRC --weight-col weight --time-col ts` does.
//! Prints one line: what, seconds, peak RSS (VmHWM) in MiB.

use std::path::PathBuf;
use std::time::Instant;

use twotower_data::{
    import, synth, Dataset, ImportFormat, ImportOptions, NoProgress, SynthOptions, UserHistories,
};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |k: usize| -> &str {
        args.get(k).map(String::as_str).unwrap_or_else(|| {
            eprintln!(
                "usage: data_bench import-ml1m SRC OUT | import csv|parquet SRC OUT [TIME_COL] | load DIR | synth OUT N [USERS ITEMS]"
            );
            std::process::exit(2)
        })
    };
    let t = Instant::now();
    let what = match arg(0) {
        "import-ml1m" => {
            let r = import(
                &PathBuf::from(arg(1)),
                &PathBuf::from(arg(2)),
                &ImportOptions::new(ImportFormat::Movielens1m),
                &NoProgress,
            )
            .expect("import");
            format!("import ml-1m: {} interactions", r.interactions)
        }
        "import" => {
            let format = match arg(1) {
                "csv" => ImportFormat::Csv,
                "parquet" => ImportFormat::Parquet,
                f => {
                    eprintln!("unknown format {f}");
                    std::process::exit(2)
                }
            };
            let mut o = ImportOptions::new(format);
            o.columns.weight = Some("weight".into());
            o.columns.time = Some(args.get(4).cloned().unwrap_or_else(|| "ts".into()));
            let r = import(&PathBuf::from(arg(2)), &PathBuf::from(arg(3)), &o, &NoProgress).expect("import");
            format!("import {}: {} interactions", arg(1), r.interactions)
        }
        "load" => {
            let ds = Dataset::load(arg(1)).expect("load");
            let load = t.elapsed().as_secs_f64();
            let h = UserHistories::build(ds.training(), ds.users.len());
            format!(
                "load: {} interactions, {} users, {} items (load {load:.3}s, + histories {:.3}s, {} users)",
                ds.interactions.len(),
                ds.users.len(),
                ds.items.len(),
                t.elapsed().as_secs_f64() - load,
                h.n_users()
            )
        }
        "synth" => {
            let n: u64 = arg(2).parse().expect("N");
            let users: u32 = args.get(3).map_or(100_000, |s| s.parse().expect("users"));
            let items: u32 = args.get(4).map_or(20_000, |s| s.parse().expect("items"));
            let o = SynthOptions {
                users,
                items,
                interactions: n,
                clusters: 64,
                ..SynthOptions::default()
            };
            let r = synth(&PathBuf::from(arg(1)), &o, &NoProgress).expect("synth");
            format!(
                "synth: {} interactions, {} users, {} items",
                r.interactions, r.users, r.items
            )
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2)
        }
    };
    println!(
        "{what}: {:.3}s, peak RSS {:.1} MiB",
        t.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
}
