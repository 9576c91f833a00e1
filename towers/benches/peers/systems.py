"""The Python systems of the side-by-side table. One system per process (the driver measures its peak RSS):

    python systems.py popularity|als|tfrs-id|tfrs-feat --data DATASET_DIR --out RESULT.json [options]

Each reads the dataset's train.parquet/test.parquet through dataset.py (twotower's dense item order), trains on
train only, scores ALL items for every test user with metrics.py (train items excluded, the `twotower eval`
protocol) and writes a JSON result: metrics, training seconds (fit only: no imports, data loading or
evaluation), examples seen, examples/s, and the chosen hyper-parameters. Where a system is tuned, it is tuned
ON TEST (the chosen configuration/epoch is the one with the best R@10 on the test split), so its row is
optimistic; the result says so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dataset as dsmod  # noqa: E402
import metrics  # noqa: E402


def _eval_dense(ds, user_vecs: np.ndarray, item_vecs: np.ndarray, ks=metrics.DEFAULT_KS) -> dict:
    users, relevant = ds.test_users_relevant()
    train_items = ds.train_items_per_user()
    iv = np.ascontiguousarray(item_vecs, dtype=np.float32)

    def score(us):
        return np.ascontiguousarray(user_vecs[us], dtype=np.float32) @ iv.T

    return metrics.flat(metrics.evaluate_scores(score, users, relevant, train_items, ks))


# ---------------------------------------------------------------------------------------------------------
# popularity: training interaction count (towers::train::popularity_baseline)
# ---------------------------------------------------------------------------------------------------------


def run_popularity(ds, args) -> dict:
    t0 = time.perf_counter()
    count = np.bincount(ds.train.item, minlength=ds.n_items).astype(np.float32)
    secs = time.perf_counter() - t0
    users, relevant = ds.test_users_relevant()
    train_items = ds.train_items_per_user()
    m = metrics.flat(
        metrics.evaluate_scores(lambda us: np.broadcast_to(count, (len(us), ds.n_items)), users, relevant, train_items)
    )
    return {"metrics": m, "train_s": secs, "examples": len(ds.train), "epochs": 1, "params": {}}


# ---------------------------------------------------------------------------------------------------------
# implicit ALS (Hu, Koren, Volinsky 2008) over binary train interactions, small grid tuned on test
# ---------------------------------------------------------------------------------------------------------


def run_als(ds, args) -> dict:
    import scipy.sparse as sp
    from threadpoolctl import threadpool_limits  # installed with implicit/scipy

    import implicit

    threadpool_limits(1, "blas")  # implicit warns otherwise; its own threads are num_threads
    ui = sp.csr_matrix(
        (np.ones(len(ds.train), dtype=np.float32), (ds.train.user, ds.train.item)), shape=(ds.n_users, ds.n_items)
    )
    ui.sum_duplicates()
    ui.data[:] = 1.0  # all ratings are positives; a repeated pair counts once
    grid = []
    for factors in args.als_factors:
        for reg in args.als_reg:
            for alpha in args.als_alpha:
                for iters in args.als_iters:
                    grid.append(dict(factors=factors, regularization=reg, alpha=alpha, iterations=iters))
    tried = []
    best = None
    for p in grid:
        model = implicit.cpu.als.AlternatingLeastSquares(
            **p, random_state=args.seed, num_threads=args.threads, calculate_training_loss=False
        )
        t0 = time.perf_counter()
        model.fit(ui, show_progress=False)
        secs = time.perf_counter() - t0
        m = _eval_dense(ds, np.asarray(model.user_factors), np.asarray(model.item_factors))
        tried.append({**p, "R@10": m["R@10"], "R@100": m["R@100"], "train_s": secs})
        print(f"  als {p} R@10 {m['R@10']:.4f} R@100 {m['R@100']:.4f} fit {secs:.2f}s", file=sys.stderr)
        if best is None or m["R@10"] > best[0]["R@10"]:
            best = (m, secs, p)
    m, secs, p = best
    return {
        "metrics": m,
        "train_s": secs,
        "examples": int(ui.nnz),
        "epochs": p["iterations"],
        "params": p,
        "tuned_on_test": True,
        "grid": tried,
    }


# ---------------------------------------------------------------------------------------------------------
# TFRS two-towers
# ---------------------------------------------------------------------------------------------------------


def _tf_setup(threads: int, seed: int):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    tf.keras.utils.set_random_seed(seed)
    return tf


def _history_arrays(ds, hist_len: int, decay: float):
    """For every train example: the user's last `hist_len` train items strictly before its timestamp
    (item index + 1, 0 = padding) and their weights decay^k (k = 0 most recent); and the same for each user's
    whole train history (the query at evaluation time)."""
    hts, hits = ds.histories()
    n = len(ds.train)
    ex_items = np.zeros((n, hist_len), dtype=np.int32)
    ex_w = np.zeros((n, hist_len), dtype=np.float32)
    wk = decay ** np.arange(hist_len, dtype=np.float64)
    for r, (u, ts) in enumerate(zip(ds.train.user.tolist(), ds.train.ts.tolist())):
        end = int(np.searchsorted(hts[u], ts, side="left"))
        h = hits[u][max(0, end - hist_len) : end][::-1]  # most recent first
        ex_items[r, : len(h)] = h + 1
        ex_w[r, : len(h)] = wk[: len(h)]
    u_items = np.zeros((ds.n_users, hist_len), dtype=np.int32)
    u_w = np.zeros((ds.n_users, hist_len), dtype=np.float32)
    for u in range(ds.n_users):
        h = hits[u][-hist_len:][::-1]
        u_items[u, : len(h)] = h + 1
        u_w[u, : len(h)] = wk[: len(h)]
    return ex_items, ex_w, u_items, u_w


def run_tfrs(ds, args, features: bool) -> dict:
    tf = _tf_setup(args.threads, args.seed)
    import tensorflow_recommenders as tfrs

    n_u, n_i, d = ds.n_users, ds.n_items, args.dim
    counts = np.bincount(ds.train.item, minlength=n_i).astype(np.float64)
    q_item = (counts / counts.sum()).astype(np.float32)  # sampling probability of each item in a batch

    feats = {"user": ds.train.user.astype(np.int32), "item": ds.train.item.astype(np.int32)}
    q_feats = {"user": np.arange(n_u, dtype=np.int32)}
    if features:
        ex_h, ex_w, u_h, u_w = _history_arrays(ds, args.history_len, args.history_decay)
        feats.update(hist=ex_h, hist_w=ex_w)
        q_feats.update(hist=u_h, hist_w=u_w)
        cat_names = sorted(ds.user_cats)
        for c in cat_names:
            feats["cat_" + c] = ds.user_cats[c][1][ds.train.user].astype(np.int32)
            q_feats["cat_" + c] = ds.user_cats[c][1].astype(np.int32)
        g_max = max([len(g) for g in ds.item_genres] + [1])
        genres = np.zeros((n_i, g_max), dtype=np.int32)  # genre index + 1, 0 = padding
        for i, g in enumerate(ds.item_genres):
            genres[i, : len(g)] = np.asarray(g, dtype=np.int32) + 1
        n_genres = len(ds.genre_vocab) + 1
    # Items never seen in training share one out-of-vocabulary id row (as twotower does).
    oov = n_i
    trained = counts > 0
    item_id_row = np.where(trained, np.arange(n_i), oov).astype(np.int32)

    L = tf.keras.layers

    class UserTower(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.uid = L.Embedding(n_u + 1, d if not features else args.id_dim)
            if features:
                self.hist = L.Embedding(n_i + 2, args.history_dim)
                self.cats = {c: L.Embedding(ds.user_cats[c][0], args.cat_dim) for c in cat_names}
                self.proj = [L.Dense(w, activation="relu") for w in args.layers] + [L.Dense(d)]

        def call(self, x):
            e = self.uid(x["user"])
            if not features:
                return e
            h = self.hist(x["hist"])  # [B, H, dh]
            w = x["hist_w"][..., None]
            pooled = tf.reduce_sum(h * w, axis=1) / tf.maximum(tf.reduce_sum(w, axis=1), 1e-6)
            parts = [e, pooled] + [self.cats[c](x["cat_" + c]) for c in cat_names]
            z = tf.concat(parts, axis=-1)
            for layer in self.proj:
                z = layer(z)
            return tf.math.l2_normalize(z, axis=-1)

    class ItemTower(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.iid = L.Embedding(n_i + 1, d if not features else args.id_dim)
            if features:
                self.genre = L.Embedding(n_genres, args.genre_dim)
                self.genres = tf.constant(genres)
                self.proj = [L.Dense(w, activation="relu") for w in args.layers] + [L.Dense(d)]
            self.rows = tf.constant(item_id_row)

        def call(self, item):
            e = self.iid(tf.gather(self.rows, item))
            if not features:
                return e
            g = tf.gather(self.genres, item)
            mask = tf.cast(g > 0, tf.float32)[..., None]
            ge = tf.reduce_sum(self.genre(g) * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
            z = tf.concat([e, ge], axis=-1)
            for layer in self.proj:
                z = layer(z)
            return tf.math.l2_normalize(z, axis=-1)

    q_const = tf.constant(q_item)

    class TwoTower(tfrs.Model):
        def __init__(self):
            super().__init__()
            self.user_model = UserTower()
            self.item_model = ItemTower()
            self.task = tfrs.tasks.Retrieval(
                temperature=args.temperature if features else None, remove_accidental_hits=True
            )

        def compute_loss(self, x, training=False):
            q = self.user_model(x)
            c = self.item_model(x["item"])
            return self.task(
                q,
                c,
                candidate_sampling_probability=tf.gather(q_const, x["item"]) if args.logq else None,
                candidate_ids=x["item"],
                compute_metrics=False,
                compute_batch_metrics=False,
            )

    model = TwoTower()
    if features:
        opt = tf.keras.optimizers.Adam(learning_rate=args.lr)
    else:
        opt = tf.keras.optimizers.Adagrad(learning_rate=args.lr)  # the TFRS basic retrieval tutorial
    model.compile(optimizer=opt)
    n = len(ds.train)
    data = (
        tf.data.Dataset.from_tensor_slices(feats)
        .shuffle(n, seed=args.seed, reshuffle_each_iteration=True)
        .batch(args.batch_size)
        .prefetch(2)
    )
    all_items = np.arange(n_i, dtype=np.int32)

    def embed_eval():
        iv = np.concatenate([model.item_model(all_items[s : s + 8192]).numpy() for s in range(0, n_i, 8192)])
        uv = np.concatenate(
            [model.user_model({k: v[s : s + 8192] for k, v in q_feats.items()}).numpy() for s in range(0, n_u, 8192)]
        )
        return _eval_dense(ds, uv, iv), uv, iv

    per_epoch, fit_s, best, first_s = [], 0.0, None, None
    for ep in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.fit(data, epochs=1, verbose=0)
        fit_s += time.perf_counter() - t0
        if first_s is None:
            first_s = fit_s  # includes tracing the tf.function graphs
        m, uv, iv = embed_eval()
        per_epoch.append({"epoch": ep, "R@10": m["R@10"], "R@100": m["R@100"], "train_s": fit_s})
        print(f"  {args.system} epoch {ep} R@10 {m['R@10']:.4f} R@100 {m['R@100']:.4f} fit {fit_s:.1f}s", file=sys.stderr)
        if best is None or m["R@10"] > best[0]["R@10"]:
            best = (m, fit_s, ep, uv, iv)
    m, secs, ep, uv, iv = best
    if args.export_vectors:
        _export(Path(args.export_vectors), ds, uv, iv)
    params = {
        "dim": d,
        "batch_size": args.batch_size,
        "optimizer": "adam" if features else "adagrad",
        "lr": args.lr,
        "logq": args.logq,
        "remove_accidental_hits": True,
        "epochs_max": args.epochs,
        "best_epoch": ep,
    }
    if features:
        params.update(
            temperature=args.temperature,
            l2_normalize=True,
            history_len=args.history_len,
            history_decay=args.history_decay,
            user_categorical=sorted(ds.user_cats),
            item_genres=True,
            layers=args.layers,
        )
    return {
        "metrics": m,
        "train_s": secs,
        "examples": n,
        "epochs": ep,
        "params": params,
        "tuned_on_test": args.epochs > 1,
        "per_epoch": per_epoch,
        # throughput once the graphs are traced (epochs after the first), comparable across data sizes
        "examples_per_s_steady": (n * (args.epochs - 1) / (fit_s - first_s)) if args.epochs > 1 else None,
    }


def _export(dir: Path, ds, uv: np.ndarray, iv: np.ndarray) -> None:
    """Writes users.parquet / items.parquet as (id Utf8, vector FixedSizeList<Float32, d>): `twotower embed`'s
    format, so the ANN bench can use these vectors when twotower's own are not available."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dir.mkdir(parents=True, exist_ok=True)
    for name, ids, v in (("users", ds.users.ids, uv), ("items", ds.items.ids, iv)):
        v = np.ascontiguousarray(v, dtype=np.float32)
        vec = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1])
        pq.write_table(pa.table({"id": pa.array(ids, pa.utf8()), "vector": vec}), dir / f"{name}.parquet")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("system", choices=["popularity", "als", "tfrs-id", "tfrs-feat"])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    # ALS grid
    ap.add_argument("--als-factors", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--als-reg", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    ap.add_argument("--als-alpha", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--als-iters", type=int, nargs="+", default=[15, 30])
    # TFRS
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=None, help="max epochs (best epoch on test is reported)")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--no-logq", dest="logq", action="store_false")
    ap.add_argument("--temperature", type=float, default=0.2)
    ap.add_argument("--history-len", type=int, default=50)
    ap.add_argument("--history-decay", type=float, default=0.8)
    ap.add_argument("--history-dim", type=int, default=64)
    ap.add_argument("--id-dim", type=int, default=64)
    ap.add_argument("--cat-dim", type=int, default=16)
    ap.add_argument("--genre-dim", type=int, default=16)
    ap.add_argument("--layers", type=int, nargs="*", default=[])
    ap.add_argument("--export-vectors", default=None, help="dir for users.parquet/items.parquet of the best epoch")
    args = ap.parse_args()
    if args.epochs is None:
        args.epochs = 5 if args.system == "tfrs-feat" else 10
    if args.lr is None:
        args.lr = 0.005 if args.system == "tfrs-feat" else 0.1

    t_load = time.perf_counter()
    ds = dsmod.load(args.data)
    load_s = time.perf_counter() - t_load
    run = {
        "popularity": run_popularity,
        "als": run_als,
        "tfrs-id": lambda d, a: run_tfrs(d, a, False),
        "tfrs-feat": lambda d, a: run_tfrs(d, a, True),
    }[args.system]
    res = run(ds, args)
    res["system"] = args.system
    res["load_s"] = load_s
    res["threads"] = args.threads
    res["examples_per_s"] = (
        res["examples"] * res["epochs"] / res["train_s"] if res["train_s"] > 0 and args.system != "popularity" else None
    )
    Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
