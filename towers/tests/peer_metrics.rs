//! The side-by-side benchmark (`towers/benches/peers/`) scores TFRS, implicit ALS and popularity with its own
//! Python metric code; its figures are only comparable with `twotower eval` if both compute the same thing.
//! The Python side writes `benches/peers/fixture_metrics.json` (rankings, relevant sets and the values it
//! computes); this test recomputes them with the Rust functions and requires agreement to 1e-6, and checks
//! that `select_top` orders ties, exclusions and NaN scores as the Python ranking does.

use serde_json::Value;
use twotower_towers::select_top;
use twotower_towers::{hit_rate_at_k, ndcg_at_k, recall_at_k, EvalReport};

const TOL: f64 = 1e-6;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/fixture_metrics.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid JSON: {e}"))
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("an array of item indices")
        .iter()
        .map(|x| u32::try_from(x.as_u64().expect("a non-negative integer")).expect("fits u32"))
        .collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array of numbers")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn close(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOL,
        "{what}: Rust {got} vs Python {want} (|diff| {} > {TOL})",
        (got - want).abs()
    );
}

#[test]
fn per_ranking_metrics_match_python() {
    let fx = fixture();
    let ks: Vec<usize> = u32s(&fx["ks"]).into_iter().map(|k| k as usize).collect();
    let cases = fx["cases"].as_array().expect("cases");
    assert!(cases.len() >= 10, "the fixture should hold a dozen or more cases");
    let mut checked = 0;
    for (c, case) in cases.iter().enumerate() {
        let ranked = u32s(&case["ranked"]);
        let relevant = u32s(&case["relevant"]);
        for &k in &ks {
            let want = &case["expected"][k.to_string()];
            let name = |m: &str| format!("case {c} {m}@{k} (ranked {ranked:?}, relevant {relevant:?})");
            close(
                &name("recall"),
                recall_at_k(&ranked, &relevant, k),
                want["recall"].as_f64().unwrap(),
            );
            close(
                &name("ndcg"),
                ndcg_at_k(&ranked, &relevant, k),
                want["ndcg"].as_f64().unwrap(),
            );
            close(
                &name("hit_rate"),
                hit_rate_at_k(&ranked, &relevant, k),
                want["hit_rate"].as_f64().unwrap(),
            );
            checked += 3;
        }
    }
    assert!(checked > 0);
}

#[test]
fn averaged_report_matches_python() {
    let fx = fixture();
    let cases = fx["cases"].as_array().expect("cases");
    let rankings: Vec<Vec<u32>> = cases.iter().map(|c| u32s(&c["ranked"])).collect();
    let relevant: Vec<Vec<u32>> = cases.iter().map(|c| u32s(&c["relevant"])).collect();
    let ks: Vec<usize> = u32s(&fx["report"]["ks"])
        .into_iter()
        .map(|k| k as usize)
        .collect();
    let want = &fx["report"]["expected"];
    let got = EvalReport::from_rankings(&rankings, &relevant, &ks);
    assert_eq!(
        got.users as u64,
        want["users"].as_u64().unwrap(),
        "users with a relevant item"
    );
    let want_ks: Vec<usize> = u32s(&want["ks"]).into_iter().map(|k| k as usize).collect();
    assert_eq!(got.ks, want_ks, "cut-offs, sorted");
    for (name, g, w) in [
        ("recall", &got.recall, f64s(&want["recall"])),
        ("ndcg", &got.ndcg, f64s(&want["ndcg"])),
        ("hit_rate", &got.hit_rate, f64s(&want["hit_rate"])),
    ] {
        assert_eq!(g.len(), w.len(), "{name}: one value per cut-off");
        for (j, (a, b)) in g.iter().zip(&w).enumerate() {
            close(&format!("mean {name}@{}", got.ks[j]), *a, *b);
        }
    }
}

#[test]
fn select_top_matches_python_ranking() {
    let fx = fixture();
    let rows = fx["select_top"].as_array().expect("select_top");
    assert!(!rows.is_empty());
    for (r, row) in rows.iter().enumerate() {
        // JSON has no NaN: the fixture writes it as null.
        let scores: Vec<f32> = row["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_f64().map(|x| x as f32).unwrap_or(f32::NAN))
            .collect();
        let k = row["k"].as_u64().unwrap() as usize;
        let exclude = u32s(&row["exclude"]);
        let want = u32s(&row["expected"]);
        assert_eq!(
            select_top(&scores, k, &exclude),
            want,
            "row {r}: scores {scores:?}, k {k}, exclude {exclude:?}"
        );
    }
}
