//! `twotower report` end to end: the real binary on a small quickstart world. The page has every
//! section and a sized SVG per figure, its numbers are `eval --json`'s, the model records its plan,
//! an older model without `plan.json` still gets a page, and a real browser renders it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Std;
use std::sync::OnceLock;
use std::time::Duration;

use assert_cmd::Command;

const SECTIONS: [&str; 6] = [
    "data",
    "training",
    "evaluation",
    "beyond-accuracy",
    "index",
    "examples",
];

/// One quickstart world (dataset, model, index, and the report quickstart wrote) shared by the tests.
fn world() -> &'static PathBuf {
    static WORLD: OnceLock<PathBuf> = OnceLock::new();
    WORLD.get_or_init(|| common::quickstart("report", 300, 150, 9000, 2, 11))
}

/// Runs `report` into `out` and returns the page.
fn report(dir: &Path, model: &Path, out: &Path, extra: &[&str]) -> String {
    let assert = Command::new(common::bin())
        .args(["report", "--quiet", "--model"])
        .arg(model)
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--out")
        .arg(out)
        .args(extra)
        .timeout(Duration::from_secs(300))
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(stdout.contains("report written to"), "{stdout}");
    std::fs::read_to_string(out).unwrap()
}

/// The width and height attributes of every `<svg` tag.
fn svg_sizes(html: &str) -> Vec<(f64, f64)> {
    html.match_indices("<svg")
        .map(|(at, _)| {
            let tag = &html[at..at + html[at..].find('>').unwrap()];
            let attr = |name: &str| -> f64 {
                let key = format!(" {name}=\"");
                let s = tag.find(&key).unwrap_or_else(|| panic!("no {name} in {tag}")) + key.len();
                tag[s..s + tag[s..].find('"').unwrap()].parse().unwrap()
            };
            (attr("width"), attr("height"))
        })
        .collect()
}

fn check_page(html: &str) {
    for id in SECTIONS {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "section {id} missing"
        );
    }
    assert!(html.ends_with("</html>\n"));
    assert!(!html.contains("<script"), "no script");
    let outside = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(
        !outside.contains("http://") && !outside.contains("https://"),
        "nothing from the network"
    );
    let figures = html.matches("<figure>").count();
    let sizes = svg_sizes(html);
    assert_eq!(sizes.len(), figures, "one <svg> per figure");
    for (w, h) in sizes {
        assert!(w > 0.0 && h > 0.0, "svg of {w}×{h}");
    }
}

fn eval_json(dir: &Path) -> serde_json::Value {
    let out = Command::new(common::bin())
        .args(["eval", "--json", "--model"])
        .arg(dir.join("model"))
        .arg("--data")
        .arg(dir.join("data"))
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn f4(v: &serde_json::Value) -> String {
    format!("{:.4}", v.as_f64().unwrap())
}

#[test]
fn report_has_every_section_and_the_numbers_of_eval() {
    let dir = world();
    // quickstart wrote one already.
    check_page(&std::fs::read_to_string(dir.join("report.html")).unwrap());
    let out = dir.join("explicit-report.html");
    let html = report(
        dir,
        &dir.join("model"),
        &out,
        &["--index", &dir.join("index").display().to_string()],
    );
    check_page(&html);
    // Histograms (2), loss and validation recall (2), the recall curve, the index: six figures.
    assert_eq!(html.matches("<figure>").count(), 6);

    let v = eval_json(dir);
    for method in ["model", "popularity"] {
        let m = &v[method];
        let ks: Vec<u64> = m["ks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_u64().unwrap())
            .collect();
        assert_eq!(ks, [10, 50, 100]);
        let mut row = format!("<tr><td class=\"l\">{method}</td>");
        for j in 0..3 {
            for key in ["recall", "ndcg", "hit_rate"] {
                row.push_str(&format!("<td>{}</td>", f4(&m[key][j])));
            }
        }
        assert!(html.contains(&row), "{method}'s headline row {row} missing");
        let mut beyond = format!("<tr><td class=\"l\">{method}</td>");
        for j in 0..3 {
            beyond.push_str(&format!("<td>{}</td>", f4(&m["coverage"][j])));
        }
        beyond.push_str(&format!(
            "<td>{:.1}</td><td>{}</td>",
            m["popularity_percentile"].as_f64().unwrap(),
            f4(&m["long_tail_share"])
        ));
        assert!(
            html.contains(&beyond),
            "{method}'s beyond-accuracy row {beyond} missing"
        );
        let cov: Vec<f64> = m["coverage"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_f64().unwrap())
            .collect();
        assert!(cov.windows(2).all(|w| w[0] <= w[1]) && cov[2] <= 1.0, "{cov:?}");
    }
    // Popularity recommends the same head to everyone: less coverage than the model.
    assert!(v["model"]["coverage"][0].as_f64() > v["popularity"]["coverage"][0].as_f64());
    assert!(html.contains(&format!(
        "<td class=\"l\">test items</td><td></td><td></td><td></td><td>{:.1}</td>",
        v["model"]["test_popularity_percentile"].as_f64().unwrap()
    )));

    // Every run of the default plan is in plan.json and in the page: three candidates, the refit,
    // the second member; the temperature table has the three candidates, one chosen.
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("model/plan.json")).unwrap()).unwrap();
    let names: Vec<&str> = plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "temperature-0.12",
            "temperature-0.15",
            "temperature-0.2",
            "refit",
            "member-1"
        ]
    );
    assert_eq!(plan["temperature_search"].as_array().unwrap().len(), 3);
    for r in plan["runs"].as_array().unwrap() {
        assert!(!r["epochs"].as_array().unwrap().is_empty(), "{r}");
        assert!(html.contains(&format!("<td class=\"l\">{}</td>", r["name"].as_str().unwrap())));
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("model/manifest.json")).unwrap()).unwrap();
    assert!(
        manifest["files"]["plan.json"]["sha256"].is_string(),
        "plan.json listed with its checksum"
    );
    assert_eq!(html.matches("<td>chosen</td>").count(), 1);

    // Examples: the three drawn users, ten recommendations each.
    assert_eq!(html.matches("training items (newest first)").count(), 3);
    assert_eq!(
        html.matches("<td>10</td><td class=\"l\">").count(),
        3,
        "ten recommendations each"
    );
    // Chosen users.
    let html = report(dir, &dir.join("model"), &out, &["--users", "u3,u5"]);
    assert!(html.contains("<h3>user u3</h3>") && html.contains("<h3>user u5</h3>"));
    assert!(html.contains("No index given"));
    check_page(&html);
    let bad = Command::new(common::bin())
        .args(["report", "--model"])
        .arg(dir.join("model"))
        .args(["--users", "nobody", "--out"])
        .arg(dir.join("never.html"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nobody"));
    assert!(!dir.join("never.html").exists(), "a failed report writes nothing");
}

#[test]
fn a_model_without_plan_json_still_gets_a_report() {
    let dir = world();
    let old = dir.join("old-model");
    let _ = std::fs::remove_dir_all(&old);
    std::fs::create_dir_all(&old).unwrap();
    for e in std::fs::read_dir(dir.join("model")).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "plan.json" {
            std::fs::copy(e.path(), old.join(e.file_name())).unwrap();
        }
    }
    let mp = old.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
    manifest["files"].as_object_mut().unwrap().remove("plan.json");
    std::fs::write(&mp, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let html = report(dir, &old, &dir.join("old-report.html"), &[]);
    check_page(&html);
    assert!(html.contains("has no <code>plan.json</code>"));
    // Both members' epochs, from metrics.jsonl.
    assert!(html.contains("<td class=\"l\">member 1</td>") && html.contains("<td class=\"l\">member 2</td>"));
}

/// Loads the page in headless Chromium (`TWOTOWER_CHROMIUM`): it renders (a non-trivial
/// screenshot), the rendered DOM has every section and figure, and the console has no errors.
#[test]
fn report_renders_in_chromium() {
    let Some(chromium) = std::env::var_os("TWOTOWER_CHROMIUM") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "TWOTOWER_CHROMIUM is unset under CI: .ci/run installs chromium and sets it"
        );
        eprintln!("skipped: set TWOTOWER_CHROMIUM=/usr/bin/chromium to load the report in a browser");
        return;
    };
    let dir = world();
    let page = dir.join("browser-report.html");
    report(
        dir,
        &dir.join("model"),
        &page,
        &["--index", &dir.join("index").display().to_string()],
    );
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let profile = tempfile::tempdir().unwrap();
    let shot = dir.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let browser = |extra: &[String]| {
        let out = Std::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                "--enable-logging=stderr",
                "--v=0",
                "--window-size=1280,4000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "chromium failed: {stderr}");
        for bad in ["Uncaught", "ERROR:CONSOLE", "CONSOLE(", "Failed to load resource"] {
            assert!(!stderr.contains(bad), "console error ({bad}): {stderr}");
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    browser(&[format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[1..4], b"PNG");
    assert!(png.len() > 50_000, "a screenshot of {} bytes is blank", png.len());
    if let Some(keep) = std::env::var_os("TWOTOWER_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    let dom = browser(&["--dump-dom".to_string()]);
    for id in SECTIONS {
        assert!(
            dom.contains(&format!("<section id=\"{id}\">")),
            "rendered DOM lacks {id}"
        );
    }
    let sizes = svg_sizes(&dom);
    assert_eq!(sizes.len(), 6, "every figure in the rendered DOM");
    assert!(sizes.iter().all(|&(w, h)| w > 0.0 && h > 0.0));
}
