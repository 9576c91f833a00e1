//! Trains on a split dataset directory with an optional TOML config and prints per-epoch metrics, the
//! test metrics, the popularity baseline and the time. Used for tuning and the ablation table:
//! `cargo run --release -p twotower-towers --example tune -- DATASET OUT [CONFIG.toml] [key=value ...]`
//! where keys are TOML paths such as `loss.temperature=0.05` or `user.history=false`.

use std::time::Instant;

use twotower_data::{Dataset, NoProgress};
use twotower_towers::{evaluate, popularity_baseline, train, Config, TrainOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return Err("usage: tune DATASET OUT [CONFIG.toml] [section.key=value ...]".into());
    }
    let ds = Dataset::load(&args[0])?;
    let mut text = String::new();
    let mut overrides: Vec<(String, String, String)> = Vec::new();
    for a in &args[2..] {
        if let Some((k, v)) = a.split_once('=') {
            let (sec, key) = k.split_once('.').ok_or("override keys look like section.key")?;
            overrides.push((sec.into(), key.into(), v.into()));
        } else {
            text = std::fs::read_to_string(a)?;
        }
    }
    let mut doc: toml::Table = toml::from_str(&text)?;
    for (sec, key, v) in overrides {
        let value: toml::Value = toml::from_str(&format!("x = {v}")).map(|t: toml::Table| t["x"].clone())?;
        doc.entry(sec)
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
            .ok_or("not a table")?
            .insert(key, value);
    }
    let config = Config::from_toml_str(&toml::to_string(&doc)?, "tune")?;
    let t0 = Instant::now();
    let report = train(
        &ds,
        &config,
        args[1].as_ref(),
        &NoProgress,
        &TrainOptions::default(),
    )?;
    let secs = t0.elapsed().as_secs_f64();
    for e in &report.epochs {
        println!(
            "epoch {} loss {:.4} val R@{} {:?} {:.0} ex/s {:.1}s",
            e.epoch,
            e.loss,
            e.val_k,
            e.val_recall.map(|v| (v * 1e4).round() / 1e4),
            e.examples_per_sec,
            e.seconds
        );
    }
    let model = twotower_towers::Model::load(&args[1])?;
    let t1 = Instant::now();
    let r = evaluate(&model, &ds, &[10, 50, 100])?;
    let eval_secs = t1.elapsed().as_secs_f64();
    let p = popularity_baseline(&ds, &[10, 50, 100])?;
    println!(
        "RESULT R@10 {:.4} R@50 {:.4} R@100 {:.4} NDCG@10 {:.4} HR@10 {:.4} | pop R@10 {:.4} R@100 {:.4} | train {:.1}s (kept epoch {}) eval {:.2}s users {}",
        r.recall[0], r.recall[1], r.recall[2], r.ndcg[0], r.hit_rate[0], p.recall[0], p.recall[2], secs,
        report.summary.best_epoch, eval_secs, r.users
    );
    Ok(())
}
