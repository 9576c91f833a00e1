"""ANN side by side: hnswlib and twotower's HNSW index on the SAME item vectors.

    python ann.py --items ITEMS.parquet [--queries QUERIES.parquet] --name NAME --out-dir DIR [--twotower CMD]
    python ann.py --synthetic 1000000 --dim 64 --name synthetic-1M --out-dir DIR [--twotower CMD]

Vectors are Parquet files in `twotower embed`'s format (id Utf8, vector FixedSizeList<Float32, d>). Ground truth
is the exact top-10 by inner product (numpy, blocked). For each engine: build time (with --build-threads),
then for each ef: recall@10 against the exact top-10 and queries/s with ONE search thread (the ann-benchmarks
convention). Writes DIR/ann-NAME.json, DIR/ann-NAME.md (table) and DIR/ann-NAME.png (recall on x, queries/s on
a log y axis).

twotower's side is run through the CLI hook `twotower bench ann` (`twotower bench ann --help` lists the
flags; `--json` prints the rows this script reads); when that subcommand is missing the table says so and only hnswlib is plotted.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

K = 10


def read_vectors(path: str | Path) -> tuple[list[str], np.ndarray]:
    t = pq.read_table(path)
    idcol = "id" if "id" in t.column_names else ("item" if "item" in t.column_names else t.column_names[0])
    vcol = "vector" if "vector" in t.column_names else t.column_names[1]
    col = t.column(vcol).combine_chunks()
    if pa.types.is_fixed_size_list(col.type):
        d = col.type.list_size
        v = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, d)
    else:  # a plain List<Float32> column
        v = np.asarray(col.to_pylist(), dtype=np.float32)
    return [str(x) for x in t.column(idcol).to_pylist()], np.ascontiguousarray(v)


def write_vectors(path: str | Path, ids: list[str], v: np.ndarray) -> None:
    v = np.ascontiguousarray(v, dtype=np.float32)
    vec = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1])
    pq.write_table(pa.table({"id": pa.array(ids, pa.utf8()), "vector": vec}), path)


def synthetic(n: int, dim: int, n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A clustered unit-norm catalogue (a Gaussian mixture, like learned item embeddings: many tight-ish
    clusters of different sizes) and queries from the same mixture."""
    rng = np.random.default_rng(seed)
    n_centers = max(16, n // 1000)
    centers = rng.standard_normal((n_centers, dim)).astype(np.float32)
    sizes = rng.zipf(1.5, size=n_centers).astype(np.float64)
    p = sizes / sizes.sum()

    def draw(m):
        out = np.empty((m, dim), dtype=np.float32)
        for s in range(0, m, 200_000):
            e = min(m, s + 200_000)
            c = rng.choice(n_centers, size=e - s, p=p)
            x = centers[c] + 0.6 * rng.standard_normal((e - s, dim)).astype(np.float32)
            out[s:e] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    return draw(n), draw(n_queries)


def exact_topk(items: np.ndarray, queries: np.ndarray, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k ids by inner product and the k-th best score of each query."""
    out = np.empty((len(queries), k), dtype=np.int64)
    kth = np.empty(len(queries), dtype=np.float32)
    block = max(1, int(2e7 // max(1, len(items))))  # ~80 MB of scores at a time
    for s in range(0, len(queries), block):
        sc = queries[s : s + block] @ items.T
        part = np.argpartition(-sc, k - 1, axis=1)[:, :k]
        ps = np.take_along_axis(sc, part, axis=1)
        order = np.argsort(-ps, axis=1, kind="stable")
        out[s : s + block] = np.take_along_axis(part, order, axis=1)
        kth[s : s + block] = np.take_along_axis(ps, order, axis=1)[:, -1]
    return out, kth


def recall(found: np.ndarray, truth: tuple[np.ndarray, np.ndarray], items: np.ndarray, queries: np.ndarray) -> float:
    """ann-benchmarks' k-NN recall: a returned item counts when it scores at least the exact k-th best score
    (minus 1e-5), so ties at the boundary (duplicate vectors, e.g. cold items sharing a row) are not misses."""
    _, kth = truth
    found = np.asarray(found, dtype=np.int64)
    valid = found >= 0
    sc = np.einsum("qd,qkd->qk", queries, items[np.where(valid, found, 0)])
    ok = (sc >= kth[:, None] - 1e-5) & valid
    return float(np.mean(np.minimum(ok.sum(axis=1), K) / K))


def bench_hnswlib(items, queries, truth, efs, M, efc, build_threads, seed) -> dict:
    import hnswlib

    idx = hnswlib.Index(space="ip", dim=items.shape[1])
    t0 = time.perf_counter()
    idx.init_index(max_elements=len(items), M=M, ef_construction=efc, random_seed=seed)
    idx.set_num_threads(build_threads)
    idx.add_items(items, np.arange(len(items)))
    build_s = time.perf_counter() - t0
    idx.set_num_threads(1)
    pts = []
    for ef in efs:
        idx.set_ef(max(ef, K))
        idx.knn_query(queries[: min(50, len(queries))], k=K)  # warm caches
        t0 = time.perf_counter()
        labels, _ = idx.knn_query(queries, k=K)
        dt = time.perf_counter() - t0
        pts.append({"ef": ef, "recall": recall(labels, truth, items, queries), "qps": len(queries) / dt})
    return {"engine": "hnswlib", "params": {"M": M, "ef_construction": efc, "space": "ip"}, "build_s": build_s,
            "build_threads": build_threads, "points": pts}


def bench_twotower(tt: str, items_path, queries_path, efs, M, efc, build_threads, work: Path) -> dict:
    """The hook: `twotower --threads T bench ann --items F --queries Q --k 10 --ef 10,20,.. --m M
    --ef-construction EFC --search-threads 1 --json` printing
    {"build_s": .., "points": [{"ef": .., "recall": .., "qps": ..}], "params": {..}} (recall against its own
    exact index, which must agree with ours: both rank by inner product)."""
    cmd = shlex.split(tt) + [
        "--threads", str(build_threads), "bench", "ann", "--items", str(items_path), "--queries", str(queries_path),
        "--k", str(K), "--ef", ",".join(map(str, efs)), "--m", str(M), "--ef-construction", str(efc),
        "--search-threads", "1", "--json",
    ]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"engine": "twotower", "missing": f"`{' '.join(cmd)}` could not run: {e}"}
    if p.returncode != 0:
        msg = (p.stderr or p.stdout).strip().splitlines()
        return {"engine": "twotower", "missing": f"`twotower bench ann` failed (rc {p.returncode}): "
                + (msg[-1] if msg else "no output")}
    rep = None
    for chunk in [p.stdout] + p.stdout.splitlines()[::-1]:
        try:
            rep = json.loads(chunk)
            break
        except json.JSONDecodeError:
            continue
    if not isinstance(rep, dict) or "points" not in rep:
        return {"engine": "twotower", "missing": "`twotower bench ann --json` printed no {build_s, points} JSON"}
    rep["engine"] = "twotower"
    return rep


def bench_twotower_index(tt: str, model: Path, efs, M, efc, build_threads, work: Path) -> dict:
    """Second route when `twotower bench ann` is missing: `twotower index build` over the model's catalogue
    (the same item vectors `twotower embed --items` writes; build time includes embedding the catalogue) and
    `twotower index check --ef ...`, whose "user queries" section gives recall@10 (plain overlap with exact
    search) and one-thread queries/s on up to 1000 sampled users."""
    index = work / "twotower-index"
    if index.exists():
        shutil.rmtree(index)
    base = shlex.split(tt) + ["--threads", str(build_threads), "--quiet"]
    t0 = time.perf_counter()
    try:
        b = subprocess.run(base + ["index", "build", "--model", str(model), "--index", str(index), "--m", str(M),
                                   "--ef-construction", str(efc)], capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"engine": "twotower", "missing": f"`twotower index build` could not run: {e}"}
    build_s = time.perf_counter() - t0
    if b.returncode != 0:
        msg = (b.stderr or b.stdout).strip().splitlines()
        return {"engine": "twotower", "missing": f"`twotower index build` failed: {msg[-1] if msg else b.returncode}"}
    c = subprocess.run(base + ["index", "check", "--model", str(model), "--index", str(index), "--ef",
                               ",".join(map(str, efs)), "--min-recall", "0"], capture_output=True, text=True,
                       timeout=3600)
    pts, section = [], None
    for line in c.stdout.splitlines():
        low = line.strip().lower()
        if low.endswith(")") and ":" in low and "queries" in low.split(":")[0]:
            section = low.split(":")[0]
            continue
        f = line.split()
        if section == "user queries" and len(f) >= 3 and f[0].isdigit():
            try:
                pts.append({"ef": int(f[0]), "recall": float(f[1]), "qps": float(f[2])})
            except ValueError:
                pass
    if not pts:
        msg = (c.stderr or c.stdout).strip().splitlines()
        return {"engine": "twotower", "missing": f"could not parse `twotower index check`: {msg[-1] if msg else ''}"}
    return {"engine": "twotower", "params": {"M": M, "ef_construction": efc, "via": "index build + index check"},
            "build_s": build_s, "build_threads": build_threads, "points": pts,
            "note": "recall on index check's own user sample (plain overlap with exact top-10)"}


def plot(results: list[dict], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    for r in results:
        if r.get("points"):
            xs = [p["recall"] for p in r["points"]]
            ys = [p["qps"] for p in r["points"]]
            ax.plot(xs, ys, marker="o", label=f"{r['engine']} (build {r['build_s']:.1f}s)")
            for p in r["points"]:
                ax.annotate(f"ef={p['ef']}", (p["recall"], p["qps"]), fontsize=6, alpha=0.7,
                            xytext=(3, 3), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_xlabel(f"recall@{K}")
    ax.set_ylabel("queries/s (1 thread, log scale)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown(results: list[dict], meta: dict) -> str:
    lines = [
        f"### ANN: {meta['name']} ({meta['n_items']} items, d = {meta['dim']}, {meta['n_queries']} queries, "
        f"{meta['source']})",
        "",
        f"recall@{K} against the exact inner-product top-{K}; queries/s with one search thread; build with "
        f"{meta['build_threads']} threads.",
        "",
        "| engine | params | build s | ef | recall@10 | queries/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        if r.get("missing"):
            lines.append(f"| {r['engine']} | — | — | — | — | not measured: {r['missing']} |")
            continue
        ps = ", ".join(f"{k}={v}" for k, v in (r.get("params") or {}).items())
        if r.get("note"):
            ps += f" ({r['note']})"
        for j, p in enumerate(r["points"]):
            b = f"{r['build_s']:.2f}" if j == 0 else ""
            lines.append(f"| {r['engine'] if j == 0 else ''} | {ps if j == 0 else ''} | {b} | {p['ef']} | "
                         f"{p['recall']:.4f} | {p['qps']:,.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items")
    ap.add_argument("--queries", help="query vectors (e.g. `twotower embed --users`); default: sampled items")
    ap.add_argument("--synthetic", type=int, default=0, help="generate this many unit-norm items instead")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--n-queries", type=int, default=1000)
    ap.add_argument("--name", required=True)
    ap.add_argument("--source", default="", help="where the vectors come from (for the table)")
    ap.add_argument("--out-dir", required=True, help="where the .md/.json/.png go")
    ap.add_argument("--work-dir", default=None, help="where query/synthetic vector files go (default: a temp dir)")
    ap.add_argument("--ef", type=int, nargs="+", default=[10, 20, 40, 80, 160, 320, 640])
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--build-threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--twotower", default="", help="command that runs the twotower binary ('' = skip)")
    ap.add_argument("--twotower-model", default=None,
                    help="model dir: if `twotower bench ann` is missing, use `index build` + `index check` on it")
    args = ap.parse_args()

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="peers-ann-"))
    work = work / f"ann-{args.name}"
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    if args.synthetic:
        t0 = time.perf_counter()
        items, queries = synthetic(args.synthetic, args.dim, args.n_queries, args.seed)
        items_path, queries_path = work / "items.parquet", work / "queries.parquet"
        write_vectors(items_path, [str(i) for i in range(len(items))], items)
        write_vectors(queries_path, [f"q{i}" for i in range(len(queries))], queries)
        source = args.source or f"synthetic Gaussian mixture, seed {args.seed}"
        print(f"  synthetic {len(items)}x{args.dim} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    else:
        _, items = read_vectors(args.items)
        items_path = Path(args.items)
        if args.queries:
            _, queries = read_vectors(args.queries)
            if len(queries) > args.n_queries:
                queries = queries[rng.choice(len(queries), args.n_queries, replace=False)]
        else:
            queries = items[rng.choice(len(items), min(args.n_queries, len(items)), replace=False)]
        queries_path = work / "queries.parquet"
        write_vectors(queries_path, [f"q{i}" for i in range(len(queries))], queries)
        source = args.source or str(args.items)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    t0 = time.perf_counter()
    truth = exact_topk(items, queries)
    print(f"  exact top-{K} for {len(queries)} queries in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    results = [bench_hnswlib(items, queries, truth, args.ef, args.m, args.ef_construction, args.build_threads,
                             args.seed)]
    if args.twotower:
        r = bench_twotower(args.twotower, items_path, queries_path, args.ef, args.m, args.ef_construction,
                           args.build_threads, work)
        if r.get("missing") and args.twotower_model:
            r2 = bench_twotower_index(args.twotower, Path(args.twotower_model), args.ef, args.m,
                                      args.ef_construction, args.build_threads, work)
            r = r2 if not r2.get("missing") else {"engine": "twotower", "missing": r["missing"] + "; " + r2["missing"]}
        results.append(r)
    else:
        results.append({"engine": "twotower", "missing": "no twotower binary given"})
    meta = {"name": args.name, "n_items": len(items), "dim": items.shape[1], "n_queries": len(queries),
            "source": source, "build_threads": args.build_threads}
    (out / f"ann-{args.name}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    (out / f"ann-{args.name}.md").write_text(markdown(results, meta))
    plot(results, f"{args.name}: {len(items)} items, d={items.shape[1]}, k={K}", out / f"ann-{args.name}.png")
    print(markdown(results, meta))


if __name__ == "__main__":
    main()
