//! `plan.json`: every plan shape records its runs (names, settings, epochs) and its temperature
//! search in the model directory, listed in the manifest; an interrupted and resumed run records
//! every epoch.

use std::path::Path;

use twotower_data::{Dataset, NoProgress};

mod common;
use twotower_towers::{train, Config, EpochMetrics, Model, PlanHistory, TrainOptions, PLAN_FILE};

fn dataset(dir: &Path) -> Dataset {
    common::split_synthetic(dir, 200, 120, 5_000, 5)
}

fn small_config() -> Config {
    let mut c = Config::default();
    c.model.dim = 8;
    c.item.id_dim = 8;
    c.user.id_dim = 8;
    c.user.history_dim = 8;
    c.item.genre_dim = 4;
    c.item.title_dim = 4;
    c.user.layers = vec![];
    c.item.layers = vec![];
    c.train.epochs = 2;
    c.train.batch_size = 256;
    c.train.patience = 0;
    c.train.threads = 2;
    c.loss.temperature_candidates.clear();
    c.train.refit = false;
    c.model.members = 1;
    c
}

fn plan(out: &Path) -> PlanHistory {
    // Model::load verifies every listed checksum, plan.json included.
    let model = Model::load(out).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert!(
        manifest["files"][PLAN_FILE]["sha256"].is_string(),
        "plan.json is listed"
    );
    PlanHistory::read(model.dir()).unwrap().expect("plan.json")
}

fn metrics(out: &Path) -> Vec<EpochMetrics> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_single_run_records_itself_and_resume_keeps_every_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path());
    let cfg = small_config();
    let out = tmp.path().join("m");
    train(&ds, &cfg, &out, &NoProgress, &TrainOptions::default()).unwrap();
    let p = plan(&out);
    assert!(p.temperature_search.is_empty());
    assert_eq!(p.runs.len(), 1);
    let r = &p.runs[0];
    assert_eq!(r.name, "single");
    assert_eq!(r.member, Some(1));
    assert_eq!(
        (r.max_epochs, r.seed, r.temperature),
        (2, cfg.train.seed, cfg.loss.temperature)
    );
    assert!(r.validates);
    assert_eq!(r.epochs, metrics(&out), "the run's epochs are metrics.jsonl's");

    // Interrupted after one epoch, then resumed: the plan lists both epochs, the same losses.
    let resumed = tmp.path().join("r");
    let stop = TrainOptions {
        stop_after_epochs: Some(1),
        ..TrainOptions::default()
    };
    train(&ds, &cfg, &resumed, &NoProgress, &stop).unwrap();
    assert!(!resumed.join(PLAN_FILE).exists(), "nothing committed yet");
    let resume = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    train(&ds, &cfg, &resumed, &NoProgress, &resume).unwrap();
    let q = plan(&resumed);
    let losses = |p: &PlanHistory| p.runs[0].epochs.iter().map(|e| e.loss).collect::<Vec<_>>();
    assert_eq!(losses(&q), losses(&p));
}

#[test]
fn a_search_and_an_ensemble_record_every_run() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path());
    let mut cfg = small_config();
    cfg.loss.temperature_candidates = vec![0.1, 0.2];
    cfg.model.members = 2;
    let out = tmp.path().join("m");
    train(&ds, &cfg, &out, &NoProgress, &TrainOptions::default()).unwrap();
    let p = plan(&out);
    let names: Vec<&str> = p.runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["temperature-0.1", "temperature-0.2", "member-1"]);
    assert_eq!(p.temperature_search.len(), 2);
    let chosen = p.temperature_search.iter().position(|t| t.chosen).unwrap();
    // The chosen candidate is member 1, the other is discarded, the second member has its own seed.
    assert_eq!(p.runs[chosen].member, Some(1));
    assert_eq!(p.runs[1 - chosen].member, None);
    assert_eq!(p.runs[2].member, Some(2));
    assert_eq!(p.runs[2].temperature, p.temperature_search[chosen].temperature);
    assert_ne!(p.runs[2].seed, p.runs[chosen].seed);
    for r in &p.runs {
        assert_eq!(r.epochs.len(), 2, "{}", r.name);
    }
    // metrics.jsonl holds the model's members only; plan.json also the discarded candidate.
    assert_eq!(metrics(&out).len(), 4);

    // An ensemble without a search: members 0 and 1.
    let mut cfg = small_config();
    cfg.model.members = 2;
    let out = tmp.path().join("e");
    train(&ds, &cfg, &out, &NoProgress, &TrainOptions::default()).unwrap();
    let p = plan(&out);
    let names: Vec<&str> = p.runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["member-0", "member-1"]);
    assert_eq!(
        p.runs.iter().map(|r| r.member).collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );
}
