//! End-to-end training on a small synthetic dataset: quality against popularity, resume reproduces an
//! uninterrupted run, the test part is never read, saved models reload to identical embeddings, and
//! broken model directories are clear errors.

use std::path::{Path, PathBuf};

use twotower_data::{Dataset, NoProgress};

mod common;
use twotower_towers::{evaluate, popularity_baseline, train, Config, Model, NewItem, TrainOptions};

fn dataset(dir: &Path) -> Dataset {
    common::split_synthetic(dir, 300, 200, 9_000, 7)
}

fn small_config() -> Config {
    let mut c = Config::default();
    c.model.dim = 16;
    c.item.id_dim = 16;
    c.user.id_dim = 16;
    c.user.history_dim = 16;
    c.item.genre_dim = 8;
    c.item.title = true;
    c.item.title_dim = 8;
    c.user.categorical_dim = 4;
    c.item.categorical_dim = 4;
    c.user.layers = vec![32];
    c.item.layers = vec![32];
    c.train.epochs = 3;
    c.train.batch_size = 256;
    c.train.patience = 0;
    c.train.threads = 2;
    c.loss.extra_negatives = 32;
    // The optional part rides along, so reload, resume and determinism cover it too.
    c.loss.mask_seen_items = true;
    // One run at one temperature, kept as it is; `temperature_search_keeps_the_best_and_resumes`
    // covers the search and `refit_trains_on_every_row_with_the_chosen_settings` the refit.
    c.loss.temperature_candidates.clear();
    c.train.refit = false;
    // One member: `ensemble_members_concatenate_and_resume` covers ensembles.
    c.model.members = 1;
    c
}

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The hidden entries of `dir` (run directories of searches, refits and ensemble members), sorted.
fn hidden(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    names
}

#[test]
fn trains_beats_popularity_and_reloads_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path());
    let out = tmp.path().join("model");
    let report = train(&ds, &small_config(), &out, &NoProgress, &TrainOptions::default()).unwrap();
    assert_eq!(report.epochs.len(), 3);
    assert!(
        report.epochs[2].loss < report.epochs[0].loss,
        "loss falls: {:?}",
        report.epochs
    );
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3);

    let m = Model::load(&out).unwrap();
    let r = evaluate(&m, &ds, &[10, 50]).unwrap();
    let pop = popularity_baseline(&ds, &[10, 50]).unwrap();
    assert!(r.users > 0);
    assert!(
        r.recall[1] > pop.recall[1],
        "model R@50 {} should beat popularity {}",
        r.recall[1],
        pop.recall[1]
    );

    // Reload: bit-identical embeddings; unit norm; new-item and anonymous paths work.
    let a = m.item_embeddings().unwrap();
    let b = Model::load(&out).unwrap().item_embeddings().unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), m.item_vocab().len() * 16);
    let norm: f32 = a[..16].iter().map(|x| x * x).sum();
    assert!((norm - 1.0).abs() < 1e-4);
    let u = m.user_embeddings().unwrap();
    let id = m.user_vocab().id(3).to_string();
    // One user alone goes through a different matrix kernel than a batch: equal to rounding.
    let one = m.embed_user(&id, &[]).unwrap();
    for (x, y) in one.iter().zip(&u[3 * 16..4 * 16]) {
        assert!((x - y).abs() < 1e-5, "{x} vs {y}");
    }
    let anon = m.embed_recent(&[0, 1, 2]).unwrap();
    assert_eq!(anon.len(), 16);
    let cold = m
        .embed_new_items(&[NewItem {
            id: "brand-new".into(),
            title: Some("something new".into()),
            genres: vec![],
            categorical: vec![],
        }])
        .unwrap();
    assert_eq!(cold.len(), 16);
    assert!(
        m.embed_recent(&[999_999]).is_err(),
        "item rows outside the catalogue are errors"
    );
}

#[test]
fn resume_reproduces_uninterrupted_run_and_test_part_is_never_read() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = dataset(tmp.path());
    let cfg = small_config();
    let full = tmp.path().join("full");
    train(&ds, &cfg, &full, &NoProgress, &TrainOptions::default()).unwrap();

    let part = tmp.path().join("part");
    let stop = TrainOptions {
        stop_after_epochs: Some(1),
        ..TrainOptions::default()
    };
    train(&ds, &cfg, &part, &NoProgress, &stop).unwrap();
    assert!(
        !part.exists(),
        "nothing is committed as the model before the run finishes"
    );
    assert!(
        Model::load(tmp.path().join(".part.single")).is_ok(),
        "an interrupted run leaves its last epoch loadable beside the output"
    );
    let resume = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    train(&ds, &cfg, &part, &NoProgress, &resume).unwrap();
    assert_eq!(
        read(full.join("weights.safetensors")),
        read(part.join("weights.safetensors"))
    );
    assert_eq!(
        read(full.join("checkpoint.safetensors")),
        read(part.join("checkpoint.safetensors"))
    );

    // Replace the test part with garbage: training must not change by a bit.
    let test = ds.test.as_mut().unwrap();
    test.item.iter_mut().for_each(|i| *i = 0);
    test.user.iter_mut().for_each(|u| *u = 1);
    let other = tmp.path().join("other");
    train(&ds, &cfg, &other, &NoProgress, &TrainOptions::default()).unwrap();
    assert_eq!(
        read(full.join("weights.safetensors")),
        read(other.join("weights.safetensors"))
    );
}

/// The default temperature search: one run per candidate, the best on validation kept as the model,
/// the other runs removed; cut short, it leaves the candidates' runs and `--resume` finishes them
/// into the same model.
#[test]
fn temperature_search_keeps_the_best_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path());
    let mut cfg = small_config();
    cfg.train.epochs = 2;
    cfg.loss.temperature_candidates = vec![0.05, 0.3];
    let full = tmp.path().join("full");
    let r = train(&ds, &cfg, &full, &NoProgress, &TrainOptions::default()).unwrap();
    assert!(r.finished);
    assert_eq!(r.temperature_search.len(), 2);
    let chosen: Vec<_> = r.temperature_search.iter().filter(|t| t.chosen).collect();
    assert_eq!(chosen.len(), 1);
    let best = r
        .temperature_search
        .iter()
        .map(|t| t.validation_recall.unwrap())
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(chosen[0].validation_recall, Some(best));
    let m = Model::load(&full).unwrap();
    assert_eq!(m.meta().config.loss.temperature, chosen[0].temperature);
    assert!(m.meta().config.loss.temperature_candidates.is_empty());
    assert!(hidden(tmp.path()).is_empty(), "{:?}", hidden(tmp.path()));

    let part = tmp.path().join("part");
    let stop = TrainOptions {
        stop_after_epochs: Some(1),
        ..TrainOptions::default()
    };
    let r = train(&ds, &cfg, &part, &NoProgress, &stop).unwrap();
    assert!(!r.finished);
    assert!(
        !part.exists(),
        "no model is chosen before every candidate has finished"
    );
    assert_eq!(hidden(tmp.path()).len(), 2);
    let resume = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    let r = train(&ds, &cfg, &part, &NoProgress, &resume).unwrap();
    assert!(r.finished);
    assert!(hidden(tmp.path()).is_empty());
    assert_eq!(
        read(full.join("weights.safetensors")),
        read(part.join("weights.safetensors"))
    );
}

/// The default refit: after the validation runs, the model is trained once more on every training
/// row with the chosen temperature and epoch count; the hidden runs are removed; cut short during the
/// search, `--resume` finishes into the same model.
#[test]
fn refit_trains_on_every_row_with_the_chosen_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path());
    let mut cfg = small_config();
    cfg.train.epochs = 2;
    cfg.train.refit = true;
    cfg.loss.temperature_candidates = vec![0.05, 0.3];
    let full = tmp.path().join("full");
    let r = train(&ds, &cfg, &full, &NoProgress, &TrainOptions::default()).unwrap();
    assert!(r.finished);
    let chosen = r.temperature_search.iter().find(|t| t.chosen).unwrap();
    assert_eq!(r.refit_validation_recall, chosen.validation_recall);
    assert!(r.refit_validation_recall.is_some());
    let m = Model::load(&full).unwrap();
    let c = &m.meta().config;
    assert_eq!(c.loss.temperature, chosen.temperature);
    assert_eq!(c.train.epochs, chosen.best_epoch);
    assert_eq!(c.train.validation_per_user, 0);
    assert!(!c.train.refit);
    assert_eq!(r.epochs.len(), chosen.best_epoch);
    assert_eq!(
        m.meta().training.train_examples,
        ds.training().len(),
        "the refit trains on every training row"
    );
    assert!(hidden(tmp.path()).is_empty(), "{:?}", hidden(tmp.path()));

    let part = tmp.path().join("part");
    // Debris of an earlier interrupted run: a fresh run clears it, so `--resume` finds only its own.
    let stale = tmp.path().join(".part.refit");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("checkpoint.json"), "{}").unwrap();
    let stop = TrainOptions {
        stop_after_epochs: Some(1),
        ..TrainOptions::default()
    };
    assert!(!train(&ds, &cfg, &part, &NoProgress, &stop).unwrap().finished);
    assert!(!part.exists());
    assert!(!stale.exists(), "the stale refit directory is removed");
    let resume = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    assert!(train(&ds, &cfg, &part, &NoProgress, &resume).unwrap().finished);
    assert_eq!(
        read(full.join("weights.safetensors")),
        read(part.join("weights.safetensors"))
    );
}

/// An ensemble of two members: the first member is the single model of the same seed, so the
/// ensemble's vectors are that model's scaled by `1/sqrt(2)`, followed by the second member's (a
/// different model); member directories are removed; cut short in either member, `--resume`
/// finishes into the same ensemble.
#[test]
fn ensemble_members_concatenate_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path());
    let mut cfg = small_config();
    cfg.train.epochs = 2;
    let single = tmp.path().join("single");
    train(&ds, &cfg, &single, &NoProgress, &TrainOptions::default()).unwrap();
    cfg.model.members = 2;
    let full = tmp.path().join("full");
    let r = train(&ds, &cfg, &full, &NoProgress, &TrainOptions::default()).unwrap();
    assert!(r.finished);
    let members: Vec<_> = r.epochs.iter().map(|e| e.member).collect();
    assert_eq!(members, [Some(1), Some(1), Some(2), Some(2)]);
    let lines = std::fs::read_to_string(full.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 4);

    let m = Model::load(&full).unwrap();
    let s = Model::load(&single).unwrap();
    assert_eq!((m.members(), m.dim(), s.dim()), (2, 32, 16));
    assert_eq!(m.meta().config.model.members, 2);
    let k = std::f32::consts::FRAC_1_SQRT_2;
    for (a, b) in [
        (m.item_embeddings().unwrap(), s.item_embeddings().unwrap()),
        (m.user_embeddings().unwrap(), s.user_embeddings().unwrap()),
    ] {
        assert_eq!(a.len(), 2 * b.len());
        for (row, one) in a.chunks(32).zip(b.chunks(16)) {
            for (x, y) in row[..16].iter().zip(one) {
                assert!((x - y * k).abs() < 1e-6, "{x} vs {}", y * k);
            }
            let norm: f32 = row.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-4, "unit norm: {norm}");
            assert!(
                row[..16]
                    .iter()
                    .zip(&row[16..])
                    .any(|(x, y)| (x - y).abs() > 1e-3),
                "the second member is another model"
            );
        }
    }
    let anon = m.embed_recent(&[0, 1, 2]).unwrap();
    assert_eq!(anon.len(), 32);
    assert!(hidden(tmp.path()).is_empty(), "{:?}", hidden(tmp.path()));

    // Cut in the first member, then in the second; each `--resume` goes one step further.
    let part = tmp.path().join("part");
    // Debris of earlier interrupted runs with other plans: a fresh run removes it all.
    for d in [".part.member-7", ".part.temperature-0.3"] {
        std::fs::create_dir_all(tmp.path().join(d)).unwrap();
    }
    std::fs::create_dir_all(tmp.path().join(".partly.refit")).unwrap();
    let step = TrainOptions {
        stop_after_epochs: Some(1),
        ..TrainOptions::default()
    };
    assert!(!train(&ds, &cfg, &part, &NoProgress, &step).unwrap().finished);
    assert!(!part.exists());
    assert_eq!(
        hidden(tmp.path()),
        [".part.member-0", ".partly.refit"],
        "another model's directory stays"
    );
    std::fs::remove_dir(tmp.path().join(".partly.refit")).unwrap();
    let resume_step = TrainOptions { resume: true, ..step };
    assert!(
        !train(&ds, &cfg, &part, &NoProgress, &resume_step)
            .unwrap()
            .finished
    );
    assert!(!part.exists());
    assert_eq!(hidden(tmp.path()).len(), 2, "{:?}", hidden(tmp.path()));
    let resume = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    assert!(train(&ds, &cfg, &part, &NoProgress, &resume).unwrap().finished);
    assert!(hidden(tmp.path()).is_empty());
    assert_eq!(
        read(full.join("weights.safetensors")),
        read(part.join("weights.safetensors"))
    );
    // A finished ensemble has nothing left to resume, not even as a single run (it has no
    // checkpoint to continue from), and stays as it was.
    let err = train(&ds, &cfg, &part, &NoProgress, &resume).unwrap_err();
    assert!(err.to_string().contains("nothing to resume"), "{err}");
    let mut single_cfg = cfg.clone();
    single_cfg.model.members = 1;
    let err = train(&ds, &single_cfg, &part, &NoProgress, &resume).unwrap_err();
    assert!(err.to_string().contains("nothing to resume"), "{err}");
    assert_eq!(Model::load(&part).unwrap().members(), 2);
}

#[test]
fn broken_model_dirs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path());
    let mut cfg = Config::id_only();
    cfg.model.dim = 8;
    cfg.item.id_dim = 8;
    cfg.user.id_dim = 8;
    cfg.train.epochs = 1;
    let out = tmp.path().join("m");
    train(&ds, &cfg, &out, &NoProgress, &TrainOptions::default()).unwrap();
    let m = Model::load(&out).unwrap();

    // Another dataset.
    let other = common::split_synthetic(&tmp.path().join("other"), 50, 40, 800, 9);
    let e = evaluate(&m, &other, &[10]).unwrap_err().to_string();
    assert!(e.contains("trained on dataset"), "{e}");

    // Truncated weights.
    let w = out.join("weights.safetensors");
    let bytes = read(w.clone());
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let e = format!("{:#}", Model::load(&out).unwrap_err());
    assert!(e.contains("weights.safetensors"), "{e}");

    // Missing weights.
    std::fs::remove_file(&w).unwrap();
    let e = format!("{:#}", Model::load(&out).unwrap_err());
    assert!(e.contains("weights.safetensors"), "{e}");
}

/// Every file a model is made of must be listed in its manifest: with the list emptied, damaged
/// weights would otherwise load unchecked (and evaluate to garbage).
#[test]
fn a_manifest_that_lists_no_files_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path());
    let mut cfg = small_config();
    cfg.train.epochs = 1;
    let out = tmp.path().join("m");
    train(&ds, &cfg, &out, &NoProgress, &TrainOptions::default()).unwrap();
    let mpath = out.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&read(mpath.clone())).unwrap();
    manifest["files"] = serde_json::json!({});
    std::fs::write(&mpath, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let mut w = read(out.join("weights.safetensors"));
    let n = w.len();
    w[n - 5] ^= 0x55;
    std::fs::write(out.join("weights.safetensors"), w).unwrap();
    let err = Model::load(&out).unwrap_err().to_string();
    assert!(
        err.contains("does not list") && err.contains("model.json"),
        "{err}"
    );
}

/// A model directory swapped by commits while it is being loaded: every load sees one complete
/// version (the old or the new), never a mix that fails its checksums.
#[test]
fn loads_racing_commits_see_one_version() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path());
    let mut cfg = small_config();
    cfg.train.epochs = 1;
    let versions: Vec<PathBuf> = (0..2)
        .map(|k| {
            let dir = tmp.path().join(format!("v{k}"));
            cfg.train.seed = 100 + k;
            train(&ds, &cfg, &dir, &NoProgress, &TrainOptions::default()).unwrap();
            dir
        })
        .collect();
    let fingerprints: Vec<String> = versions
        .iter()
        .map(|d| Model::load(d).unwrap().fingerprint().to_string())
        .collect();
    let out = tmp.path().join("live");
    let copy_in = |from: &Path| {
        let staging = twotower_data::StagingDir::new(&out).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), staging.path().join(e.file_name())).unwrap();
        }
        staging.commit().unwrap();
    };
    copy_in(&versions[0]);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for k in 0..60 {
                copy_in(&versions[k % 2]);
            }
            done.store(true, Ordering::Release);
        });
        let mut loads = 0;
        while !done.load(Ordering::Acquire) || loads < 5 {
            let m = Model::load(&out).unwrap_or_else(|e| panic!("load {loads} saw a mixed version: {e}"));
            assert!(fingerprints.iter().any(|f| f == m.fingerprint()));
            loads += 1;
        }
    });
}
