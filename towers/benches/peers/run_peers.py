"""Driver of the side-by-side comparison (run.sh calls it inside the peers venv).

Per dataset: one `twotower data import` + `twotower data split --strategy temporal --test-fraction 0.2`, then
every system on that same train.parquet/test.parquet, each in its own process (peak RSS from wait4), then the
ANN bench on twotower's item vectors. Writes results/<date>-<dataset>.md (+ .json) and the ANN tables/plots.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable

SYSTEM_LABELS = {
    "popularity": "popularity (train counts)",
    "als": "implicit ALS (grid, tuned on test)",
    "tfrs-id": "TFRS two-tower, id-only (dim 64, logQ; tutorial recipe)",
    "tfrs-feat": "TFRS two-tower, twotower's features (id + 0.8^k history of 50 + demographics; id + genres)",
    "twotower": "twotower (default config)",
    "twotower-id": "twotower (`--id-only`)",
}
ALL_SYSTEMS = list(SYSTEM_LABELS)


def log(msg: str) -> None:
    print(f"[peers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -------------------------------------------------------------------------------------------------------------
# processes with peak memory
# -------------------------------------------------------------------------------------------------------------


def measure(cmd: list[str], log_path: Path, timeout: float | None = None, env=None) -> dict:
    """Runs cmd (stdout+stderr to log_path), returns rc, wall seconds and peak RSS (MiB) of the process tree
    (wait4's rusage: the largest of the process and its waited-for descendants)."""
    t0 = time.perf_counter()
    with open(log_path, "w") as f:
        try:
            p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
        except OSError as e:
            f.write(f"cannot run {cmd[0]}: {e}\n")
            return {"rc": 127, "wall_s": 0.0, "peak_mib": 0.0, "log": str(log_path)}
        deadline = None if timeout is None else t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if deadline and time.perf_counter() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.05)
    p.returncode = os.waitstatus_to_exitcode(status)
    return {"rc": p.returncode, "wall_s": time.perf_counter() - t0, "peak_mib": ru.ru_maxrss / 1024.0,
            "log": str(log_path)}


def tail(path: str | Path, n: int = 3) -> str:
    try:
        lines = [ln for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " / ".join(lines[-n:])[-400:]


# -------------------------------------------------------------------------------------------------------------
# the twotower CLI
# -------------------------------------------------------------------------------------------------------------


class TwoTower:
    def __init__(self, cmd: str, threads: int):
        self.base = shlex.split(cmd) if cmd else []
        self.threads = threads

    def __bool__(self) -> bool:
        return bool(self.base)

    def argv(self, *args: str) -> list[str]:
        return self.base + ["--threads", str(self.threads), "--quiet", *args]

    def run(self, log_path: Path, *args: str, timeout=None) -> dict:
        return measure(self.argv(*args), log_path, timeout)


def find_report(obj, avoid=("popular", "baseline")):
    """Finds an EvalReport-shaped dict ({ks, recall, ndcg, hit_rate}) or flat metric keys in parsed JSON;
    prefers ones not under a key naming the popularity baseline. Returns (model_report, popularity_report)."""
    found = []

    def walk(o, path):
        if isinstance(o, dict):
            if isinstance(o.get("ks"), list) and isinstance(o.get("recall"), list):
                found.append((path, o))
            else:
                flat = flat_from_keys(o)
                if flat:
                    found.append((path, {"flat": flat}))
            for k, v in o.items():
                walk(v, path + [str(k).lower()])
        elif isinstance(o, list):
            for v in o:
                walk(v, path)

    walk(obj, [])
    model = [r for p, r in found if not any(a in q for q in p for a in avoid)]
    pop = [r for p, r in found if any(a in q for q in p for a in avoid)]
    return (model[0] if model else None), (pop[0] if pop else None)


_HEAD = re.compile(r"^(r|recall|ndcg|hr|hitrate|hit_rate)@(\d+)$", re.I)
_NUM = re.compile(r"^[0-9]*\.?[0-9]+$")
_METRIC_KEY = re.compile(r"^(r|recall|ndcg|hr|hit_?rate|hitrate)\s*[@_]\s*(\d+)$", re.I)


def flat_from_keys(o: dict) -> dict:
    out = {}
    for k, v in o.items():
        m = _METRIC_KEY.match(str(k).strip())
        if m and isinstance(v, (int, float)):
            out[f"{_canon(m.group(1))}@{m.group(2)}"] = float(v)
    return out


def _canon(name: str) -> str:
    n = name.lower().replace("_", "")
    return {"r": "R", "recall": "R", "ndcg": "NDCG", "hr": "HR", "hitrate": "HR"}[n]


def report_to_flat(rep: dict | None) -> dict | None:
    if rep is None:
        return None
    if "flat" in rep:
        return rep["flat"]
    out = {"users": rep.get("users")}
    for j, k in enumerate(rep["ks"]):
        for key, name in (("recall", "R"), ("ndcg", "NDCG"), ("hit_rate", "HR")):
            if key in rep and j < len(rep[key]):
                out[f"{name}@{k}"] = rep[key][j]
    return out


def parse_eval_text(text: str) -> tuple[dict | None, dict | None]:
    """Best effort on a human-readable eval print: `R@10 0.123`, `Recall@10: 0.123`, `NDCG@10=...`, or a
    table whose header names the metrics (`| k | recall | ndcg | hit rate |` / `model | R@10 | ...`). Lines
    mentioning popularity go to the second result."""
    model, pop = {}, {}
    header = None
    for line in text.splitlines():
        low = line.lower()
        target = pop if ("popular" in low or "baseline" in low) else model
        for m in re.finditer(r"\b(R|Recall|NDCG|HR|HitRate|Hit_rate|hit rate)\s*@\s*(\d+)\s*[:=]?\s*([0-9]*\.[0-9]+)",
                             line, re.I):
            target[f"{_canon(m.group(1).replace(' ', ''))}@{m.group(2)}"] = float(m.group(3))
        toks = [t for t in re.split(r"[|\s]+", line.strip()) if t]
        metric_heads = [h for h in toks if _HEAD.match(h)]
        if len(metric_heads) >= 2:  # e.g. `method  R@10  NDCG@10  HR@10 ...` (columns = metrics)
            header = ("cols", [_HEAD.match(h) for h in metric_heads])
            continue
        low_toks = [t.lower() for t in toks]
        if "recall" in low_toks and "ndcg" in low_toks:  # e.g. `k  recall  ndcg  hit rate` (rows = cut-offs)
            header = ("rows", None)
            continue
        nums = [t for t in toks if _NUM.match(t)]
        if header and header[0] == "cols" and len(nums) >= len(header[1]):
            for m, c in zip(header[1], nums[-len(header[1]):]):
                target[f"{_canon(m.group(1))}@{m.group(2)}"] = float(c)
        elif header and header[0] == "rows" and len(nums) >= 3 and nums[0].isdigit():
            k = nums[0]
            vals = nums[1:]
            for name, v in zip(("R", "NDCG", "HR"), vals):
                target[f"{name}@{k}"] = float(v)
    return (model or None), (pop or None)


def parse_eval_output(text: str) -> tuple[dict | None, dict | None]:
    text = text.strip()
    candidates = [text] + [ln for ln in text.splitlines()[::-1] if ln.strip().startswith("{")]
    if "{" in text:
        candidates.append(text[text.index("{") : text.rindex("}") + 1])
    for c in candidates:
        try:
            obj = json.loads(c)
        except json.JSONDecodeError:
            continue
        m, p = find_report(obj)
        if m:
            return report_to_flat(m), report_to_flat(p)
    return parse_eval_text(text)


def training_summary(model_dir: Path) -> dict:
    """`training` of model.json (TrainingSummary: seconds, train_examples, epochs_run, best_epoch, threads)."""
    try:
        meta = json.loads((model_dir / "model.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    t = meta.get("training") or {}
    if not isinstance(t, dict):
        return {}
    # An ensemble's seconds cover every member's epochs; epochs_run is one member's.
    members = ((meta.get("config") or {}).get("model") or {}).get("members", 1)
    return {**t, "members": members}


# -------------------------------------------------------------------------------------------------------------
# dataset preparation (once)
# -------------------------------------------------------------------------------------------------------------


def slice_raw(src: Path, dst: Path, limit: int) -> Path:
    """A copy of a MovieLens folder keeping the first `limit` ratings (other files linked)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        t = dst / f.name
        if t.exists() or t.is_symlink():
            t.unlink()
        if f.name in ("u.data", "ratings.dat"):
            with open(f, "rb") as a, open(t, "wb") as b:
                for i, line in enumerate(a):
                    if i >= limit:
                        break
                    b.write(line)
        else:
            t.symlink_to(f.resolve())
    return dst


def prepare(name: str, src: Path, work: Path, tt: TwoTower, limit: int | None, fresh: bool) -> tuple[Path, str]:
    ds = work / "dataset"
    stamp = work / "dataset.stamp.json"
    want = {"src": str(src), "limit": limit}
    if not fresh and stamp.exists() and json.loads(stamp.read_text()).get("want") == want and (ds / "test.parquet").exists():
        made = json.loads(stamp.read_text())["made_by"]
        log(f"{name}: reusing the split in {ds} (made by {made}; --fresh to redo)")
        return ds, made
    if ds.exists():
        shutil.rmtree(ds)
    raw = slice_raw(src, work / "raw", limit) if limit else src
    fmt = "movielens-100k" if (src / "u.data").exists() else "movielens-1m"
    made_by = "twotower"
    if tt:
        r1 = tt.run(work / "import.log", "data", "import", "--format", fmt, str(raw), "--out", str(ds))
        r2 = (tt.run(work / "split.log", "data", "split", "--data", str(ds), "--strategy", "temporal",
                     "--test-fraction", "0.2") if r1["rc"] == 0 else None)
        if r1["rc"] != 0 or (r2 and r2["rc"] != 0):
            bad = r1 if r1["rc"] != 0 else r2
            log(f"{name}: `twotower data import/split` FAILED ({tail(bad['log'], 2)}); "
                "using the Python FALLBACK split (Rust rows will be skipped)")
            made_by = "peers-fallback"
    else:
        made_by = "peers-fallback"
        log(f"{name}: no twotower binary; using the Python FALLBACK split (Rust rows will be skipped)")
    if made_by == "peers-fallback":
        if ds.exists():
            shutil.rmtree(ds)
        sys.path.insert(0, str(HERE))
        import dataset as dsmod

        dsmod.fallback_import(raw, ds)
        dsmod.fallback_split(ds, 0.2)
    stamp.write_text(json.dumps({"want": want, "made_by": made_by}))
    return ds, made_by


# -------------------------------------------------------------------------------------------------------------
# systems
# -------------------------------------------------------------------------------------------------------------


def run_python_system(system: str, ds: Path, work: Path, args, extra: list[str]) -> dict:
    out = work / f"{system}.json"
    if out.exists():
        out.unlink()
    cmd = [PY, str(HERE / "systems.py"), system, "--data", str(ds), "--out", str(out), "--threads", str(args.threads),
           *extra]
    log(f"  {system}: {' '.join(shlex.quote(c) for c in cmd[2:])}")
    m = measure(cmd, work / f"{system}.log", timeout=args.timeout)
    if m["rc"] != 0 or not out.exists():
        return {"system": system, "skipped": f"failed (rc {m['rc']}): {tail(m['log'])}", **m}
    res = json.loads(out.read_text())
    res.update(peak_mib=m["peak_mib"], wall_s=m["wall_s"])
    return res


def run_twotower(system: str, ds: Path, work: Path, tt: TwoTower, args, made_by: str) -> dict:
    if not tt:
        return {"system": system, "skipped": "no twotower binary (set $TWOTOWER or let run.sh build it)"}
    if made_by != "twotower":
        return {"system": system, "skipped": "the split was made by the Python fallback, which twotower cannot load "
                "(`twotower data import/split` not available)"}
    model = work / f"model-{system}"
    if model.exists():
        shutil.rmtree(model)
    extra = ["--id-only"] if system == "twotower-id" else []
    extra += shlex.split(os.environ.get("PEERS_TWOTOWER_TRAIN_ARGS", ""))
    log(f"  {system}: twotower train --data {ds} --out {model} {' '.join(extra)}")
    m = tt.run(work / f"{system}-train.log", "train", "--data", str(ds), "--out", str(model), *extra,
               timeout=args.timeout)
    if m["rc"] != 0:
        return {"system": system, "skipped": f"`twotower train` failed (rc {m['rc']}): {tail(m['log'])}", **m}
    ev = tt.run(work / f"{system}-eval.log", "eval", "--model", str(model), "--data", str(ds), "--k", "10,50,100",
                "--json")
    if ev["rc"] != 0:  # no --json flag: the text print
        ev = tt.run(work / f"{system}-eval.log", "eval", "--model", str(model), "--data", str(ds), "--k", "10,50,100")
    if ev["rc"] != 0:
        return {"system": system, "skipped": f"`twotower eval` failed (rc {ev['rc']}): {tail(ev['log'])}", **m}
    met, pop = parse_eval_output(Path(ev["log"]).read_text(errors="replace"))
    if not met:
        return {"system": system, "skipped": f"could not parse `twotower eval` output ({ev['log']})", **m}
    summ = training_summary(model)
    secs = summ.get("seconds") or m["wall_s"]
    epochs = summ.get("epochs_run") or 1
    n_ex = summ.get("train_examples")
    members = summ.get("members") or 1
    res = {
        "system": system,
        "metrics": met,
        "rust_popularity": pop,
        "train_s": secs,
        "examples": n_ex,
        "epochs": epochs,
        "examples_per_s": (n_ex * epochs * members / secs) if (n_ex and secs) else None,
        "peak_mib": m["peak_mib"],
        "wall_s": m["wall_s"],
        "params": {k: summ.get(k) for k in ("best_epoch", "epochs_run", "threads", "stopped_early") if k in summ},
        "tuned_on_test": False,
        "model_dir": str(model),
    }
    # Item/user vectors for the ANN bench and for a Python re-scoring cross-check of the metric code.
    vec = work / f"vectors-{system}"
    vec.mkdir(exist_ok=True)
    ok = True
    for what in ("items", "users"):
        e = tt.run(work / f"{system}-embed-{what}.log", "embed", "--model", str(model), "--out",
                   str(vec / f"{what}.parquet"), f"--{what}")
        ok = ok and e["rc"] == 0 and (vec / f"{what}.parquet").exists()
    if ok:
        res["vectors"] = str(vec)
        try:
            res["python_rescored"] = rescore(ds, vec)
        except Exception as e:  # noqa: BLE001 - a cross-check must not lose the row
            res["python_rescored_error"] = repr(e)
    else:
        res["vectors_missing"] = f"`twotower embed` failed: {tail(work / f'{system}-embed-items.log')}"
    return res


def rescore(ds_dir: Path, vec: Path) -> dict:
    """Scores twotower's exported user/item vectors with metrics.py: agrees with `twotower eval` iff both the
    metric code and the protocol (exclusions, relevant sets, item order) agree."""
    import numpy as np

    sys.path.insert(0, str(HERE))
    import ann
    import dataset as dsmod
    import metrics

    ds = dsmod.load(ds_dir)
    uids, uv = ann.read_vectors(vec / "users.parquet")
    iids, iv = ann.read_vectors(vec / "items.parquet")
    U = np.zeros((ds.n_users, uv.shape[1]), dtype=np.float32)
    I = np.full((ds.n_items, iv.shape[1]), np.nan, dtype=np.float32)
    for k, u in enumerate(uids):
        if u in ds.users.index:
            U[ds.users.index[u]] = uv[k]
    for k, i in enumerate(iids):
        if i in ds.items.index:
            I[ds.items.index[i]] = iv[k]
    users, relevant = ds.test_users_relevant()
    rep = metrics.evaluate_scores(lambda us: U[us] @ I.T, users, relevant, ds.train_items_per_user())
    return metrics.flat(rep)


# -------------------------------------------------------------------------------------------------------------
# report
# -------------------------------------------------------------------------------------------------------------


def fmt(x, nd=3):
    return "—" if x is None else f"{x:.{nd}f}"


def fmt_int(x):
    return "—" if x is None else f"{x:,.0f}"


def markdown(name: str, src: Path, ds: Path, made_by: str, rows: list[dict], args, started: str, ann_md: list[str]) -> str:
    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    out = [
        f"## {name}: twotower side by side ({started})",
        "",
        f"- data: `{src}`" + (f", first {args.limit} ratings only (SMOKE RUN: figures not meaningful)" if args.limit else ""),
        f"- split: per-user temporal, test fraction 0.2, made once by **{made_by}** "
        + ("(`twotower data import` + `twotower data split`)" if made_by == "twotower" else
           "(Python FALLBACK: twotower's import/split unavailable; twotower rows skipped)")
        + f"; every system trains on the same `{ds}/train.parquet` and is scored on `test.parquet`",
        "- protocol (`twotower eval`'s): rank all items, excluding each user's train items; relevant = the user's "
        "distinct test items; Recall/NDCG/HR averaged over users with ≥ 1 test item; the Python rows are scored by "
        "`metrics.py`, which `towers/tests/peer_metrics.rs` checks against the Rust metric functions",
        f"- machine: {cpu or platform.processor()} ({os.cpu_count()} cores), {args.threads} threads per system; "
        f"command: `{os.environ.get('PEERS_CMDLINE', 'towers/benches/peers/run.sh')}`",
        "- train s: fitting only (Python: the fit calls; twotower: model.json's training seconds, which include its "
        "per-epoch validation); examples/s = training interactions × epochs (ALS: iterations) / train s; "
        "peak MiB: peak RSS of the system's process (training process for twotower; Python processes include "
        "the interpreter and, for TFRS, TensorFlow)",
        "- rows marked *tuned on test* chose their configuration/epoch by R@10 on the test split (optimistic)",
        "",
        "| system | R@10 | R@50 | R@100 | NDCG@10 | HR@10 | train s | examples/s | peak MiB | notes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        label = SYSTEM_LABELS.get(r["system"], r["system"])
        if r.get("skipped"):
            out.append(f"| {label} | — | — | — | — | — | — | — | — | not run: {r['skipped']} |")
            continue
        m = r["metrics"]
        notes = []
        if r.get("tuned_on_test"):
            notes.append("tuned on test")
        if r.get("reused_from"):
            notes.append(f"measured in an earlier run ({r['reused_from']})")
        p = r.get("params") or {}
        if r["system"] == "als":
            notes.append(f"factors {p.get('factors')}, reg {p.get('regularization')}, alpha {p.get('alpha')}, "
                         f"{p.get('iterations')} iterations (best of {len(r.get('grid', []))})")
        elif r["system"].startswith("tfrs"):
            notes.append(f"epoch {p.get('best_epoch')}/{p.get('epochs_max')}, batch {p.get('batch_size')}, "
                         f"{p.get('optimizer')} lr {p.get('lr')}" + (f", T {p.get('temperature')}" if 'temperature' in p else ""))
            if r.get("examples_per_s_steady"):
                notes.append(f"{r['examples_per_s_steady']:,.0f} examples/s after the first (tracing) epoch")
        elif r["system"].startswith("twotower"):
            if p:
                notes.append(", ".join(f"{k} {v}" for k, v in p.items()))
            rs = r.get("python_rescored")
            if rs:
                d = max(abs(rs.get(k, 0) - (m.get(k) or 0)) for k in ("R@10", "R@100", "NDCG@10", "HR@10"))
                notes.append(f"re-scored in Python from `twotower embed`: max |Δ| {d:.2e}")
            pop = r.get("rust_popularity")
            py_pop = next((x for x in rows if x["system"] == "popularity" and not x.get("skipped")), None)
            if pop and py_pop and "R@10" in pop:
                notes.append(f"twotower eval's popularity R@10 {pop['R@10']:.4f} vs Python {py_pop['metrics']['R@10']:.4f}")
        out.append(
            f"| {label} | {fmt(m.get('R@10'))} | {fmt(m.get('R@50'))} | {fmt(m.get('R@100'))} | {fmt(m.get('NDCG@10'))} "
            f"| {fmt(m.get('HR@10'))} | {fmt(r.get('train_s'), 2)} | {fmt_int(r.get('examples_per_s'))} "
            f"| {fmt_int(r.get('peak_mib'))} | {'; '.join(notes)} |"
        )
    if ann_md:
        out += ["", *ann_md]
    return "\n".join(out) + "\n"


# -------------------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", action="append", default=[], metavar="NAME=DIR",
                    help="MovieLens folder to compare on (repeatable)")
    ap.add_argument("--systems", default=",".join(ALL_SYSTEMS))
    ap.add_argument("--twotower", default=os.environ.get("TWOTOWER", ""))
    ap.add_argument("--work", default=os.environ.get("PEERS_WORK", str(Path.home() / ".cache/twotower-peers-work")))
    ap.add_argument("--results", default=str(HERE / "results"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="first N ratings only (smoke test)")
    ap.add_argument("--quick", action="store_true", help="tiny grids and 2 epochs (smoke test)")
    ap.add_argument("--fresh", action="store_true", help="redo import/split even if the work dir has it")
    ap.add_argument("--timeout", type=float, default=4 * 3600)
    ap.add_argument("--reuse", default="", help="systems whose result from an earlier run in --work is reused "
                    "instead of rerun (comma-separated; each run saves work/<dataset>/result-<system>.json)")
    ap.add_argument("--no-ann", action="store_true")
    ap.add_argument("--ann-synthetic", type=int, default=1_000_000, help="items of the synthetic ANN catalog (0 = skip)")
    ap.add_argument("--ann-ef", default="10,20,40,80,160,320,640")
    args = ap.parse_args()

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    bad = [s for s in systems if s not in SYSTEM_LABELS]
    if bad:
        sys.exit(f"unknown system(s) {bad}; known: {ALL_SYSTEMS}")
    reuse = {x for x in args.reuse.split(",") if x}
    tt = TwoTower(args.twotower, args.threads)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    today = dt.date.today().isoformat()
    started = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    suffix = "-smoke" if (args.limit or args.quick) else ""
    quick_py = {
        "als": ["--als-factors", "64", "--als-reg", "0.1", "--als-alpha", "1", "--als-iters", "15"],
        "tfrs-id": ["--epochs", "2"],
        "tfrs-feat": ["--epochs", "2"],
    }
    efs = [int(x) for x in args.ann_ef.split(",")]
    for spec in args.dataset:
        name, _, src = spec.partition("=")
        src = Path(src)
        work = Path(args.work) / (name + (f"-{args.limit}" if args.limit else ""))
        work.mkdir(parents=True, exist_ok=True)
        t_ds = time.perf_counter()
        ds, made_by = prepare(name, src, work, tt, args.limit, args.fresh)
        rows = []
        for s in systems:
            t0 = time.perf_counter()
            saved = work / f"result-{s}{suffix}.json"
            if s in reuse and saved.exists():
                r = json.loads(saved.read_text())
                r["reused_from"] = r.get("measured_at", "?")
                rows.append(r)
                log(f"  {s}: reused {saved}")
                continue
            if s.startswith("twotower"):
                r = run_twotower(s, ds, work, tt, args, made_by)
            else:
                extra = list(quick_py.get(s, [])) if args.quick else []
                if s == "tfrs-feat":
                    extra += ["--export-vectors", str(work / "vectors-tfrs-feat"),
                              "--temperature", "0.2" if "100k" in name.lower() else "0.1"]
                    if "--epochs" not in extra:
                        extra += ["--epochs", "5" if "100k" in name.lower() else "3"]
                r = run_python_system(s, ds, work, args, extra)
            r["measured_at"] = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
            saved.write_text(json.dumps(r, indent=1, default=str))
            rows.append(r)
            state = r.get("skipped") or f"R@10 {r['metrics']['R@10']:.4f} R@100 {r['metrics']['R@100']:.4f}"
            log(f"  {s}: {state} ({time.perf_counter() - t0:.1f}s)")
        ann_md = []
        if not args.no_ann:
            vec_sys = next((r for r in rows if r["system"] == "twotower" and r.get("vectors")), None)
            if vec_sys:
                vec, source = Path(vec_sys["vectors"]), "twotower default model (`twotower embed`)"
            else:
                vec, source = work / "vectors-tfrs-feat", ("TFRS features model (twotower's vectors unavailable: "
                                                          "`twotower embed` not run)")
            if (vec / "items.parquet").exists():
                cmd = [PY, str(HERE / "ann.py"), "--items", str(vec / "items.parquet"), "--queries",
                       str(vec / "users.parquet"), "--name", f"{name}{suffix}", "--source", source, "--out-dir",
                       str(results / f"{today}-ann"), "--work-dir", str(work), "--build-threads", str(args.threads),
                       "--ef", *map(str, efs)] + (["--twotower", args.twotower] if args.twotower else [])
                if vec_sys:
                    cmd += ["--twotower-model", vec_sys["model_dir"]]
                m = measure(cmd, work / "ann.log", timeout=args.timeout)
                md = results / f"{today}-ann" / f"ann-{name}{suffix}.md"
                if m["rc"] == 0 and md.exists():
                    ann_md.append(md.read_text() + f"\n![ANN {name}]({today}-ann/ann-{name}{suffix}.png)\n")
                else:
                    ann_md.append(f"ANN bench failed: {tail(m['log'])}")
            else:
                ann_md.append("ANN bench skipped: no item vectors (neither `twotower embed` nor the TFRS export)")
        md = markdown(name, src, ds, made_by, rows, args, started, ann_md)
        md += f"\nTotal for this dataset (split + all systems + ANN): {time.perf_counter() - t_ds:.0f} s.\n"
        out = results / f"{today}-{name}{suffix}.md"
        out.write_text(md)
        (results / f"{today}-{name}{suffix}.json").write_text(json.dumps(rows, indent=1, default=str))
        log(f"wrote {out}")
        print(md)
    if not args.no_ann and args.ann_synthetic:
        n = args.ann_synthetic
        label = f"synthetic-{n // 1_000_000}M" if n % 1_000_000 == 0 else f"synthetic-{n}"
        cmd = [PY, str(HERE / "ann.py"), "--synthetic", str(n), "--dim", "64", "--name", label + suffix, "--out-dir",
               str(results / f"{today}-ann"), "--work-dir", str(Path(args.work)), "--build-threads", str(args.threads),
               "--ef", *map(str, efs)] + (["--twotower", args.twotower] if args.twotower else [])
        log(f"ANN on {label}: {' '.join(cmd[2:])}")
        m = measure(cmd, Path(args.work) / f"ann-{label}.log", timeout=args.timeout)
        log(f"ANN {label}: rc {m['rc']}, {m['wall_s']:.0f}s, peak {m['peak_mib']:.0f} MiB")
        if m["rc"] == 0:
            print((results / f"{today}-ann" / f"ann-{label}{suffix}.md").read_text())


if __name__ == "__main__":
    main()
