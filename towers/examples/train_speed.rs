//! Training throughput the way `twotower --threads N train --data D --out M [--id-only] [--dim d]
//! --epochs E --patience 0` runs it (same thread and candle-pool settings), without the CLI crate:
//!
//! `cargo run --release -p twotower-towers --example train_speed -- DATA THREADS {id-only|default} [DIM] [EPOCHS]`
//!
//! Prints each epoch's training examples/s (validation excluded) and the validation recall.

use twotower_data::{Dataset, NoProgress};
use twotower_towers::{train, Config, TrainOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err("usage: train_speed DATA THREADS {id-only|default} [DIM] [EPOCHS]".into());
    }
    let threads: usize = args[1].parse()?;
    // What the CLI does for `--threads N` and `train`.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;
    let mut c = match args[2].as_str() {
        "id-only" => Config::id_only(),
        "default" => Config::default(),
        other => return Err(format!("unknown model {other}").into()),
    };
    if let Some(d) = args.get(3) {
        let d: usize = d.parse()?;
        c.model.dim = d;
        if args[2] == "id-only" {
            c.item.id_dim = d;
            c.user.id_dim = d;
        }
    }
    c.train.epochs = args.get(4).map_or(Ok(3), |e| e.parse())?;
    c.train.patience = 0;
    c.train.threads = threads;
    let ds = Dataset::load(&args[0])?;
    let out = std::env::temp_dir().join(format!("train_speed_{}", std::process::id()));
    let report = train(&ds, &c, &out, &NoProgress, &TrainOptions::default())?;
    let _ = std::fs::remove_dir_all(&out);
    for e in &report.epochs {
        println!(
            "{} t={threads} d={} epoch {}: {:.0} ex/s, loss {:.4}, val R@{} {:.4}",
            args[2],
            c.model.dim,
            e.epoch,
            e.examples_per_sec,
            e.loss,
            e.val_k,
            e.val_recall.unwrap_or(f64::NAN)
        );
    }
    Ok(())
}
