"""A twotower dataset directory (DESIGN.md "Artifacts") read into dense indices, the same way the Rust side
reads it, so that item index i here is item index i in twotower (this matters for tie-breaking in rankings).

Vocabulary order (data/src/dataset.rs): ids of items.parquet in file order, then any item first seen in
interactions.parquet, then train.parquet, then test.parquet (users likewise with users.parquet).

Also holds a *fallback* importer and temporal splitter, used only when the `twotower` binary cannot make the
split (its `data import` / `data split` not built yet). Datasets made by it are marked in manifest.json
(`"made_by": "peers-fallback"`); the driver then skips the Rust rows and says so in the report.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


class Vocab:
    def __init__(self, ids=()):
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        for i in ids:
            self.insert(i)

    def insert(self, s: str) -> int:
        j = self.index.get(s)
        if j is None:
            j = len(self.ids)
            self.index[s] = j
            self.ids.append(s)
        return j

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Part:
    user: np.ndarray  # int64 dense
    item: np.ndarray  # int64 dense
    ts: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.user)


@dataclass
class Dataset:
    dir: Path
    users: Vocab
    items: Vocab
    train: Part
    test: Part
    made_by: str = "twotower"
    # item features: genre index lists (vocab over genre strings), per item row
    genre_vocab: Vocab = field(default_factory=Vocab)
    item_genres: list[list[int]] = field(default_factory=list)
    # user features: column name -> (vocab size incl. OOV slot, int array per dense user; OOV = len(vocab))
    user_cats: dict[str, tuple[int, np.ndarray]] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def train_items_per_user(self) -> list[np.ndarray]:
        """Items each dense user interacted with in train (what eval excludes from the ranking)."""
        order = np.argsort(self.train.user, kind="stable")
        u_sorted = self.train.user[order]
        i_sorted = self.train.item[order]
        bounds = np.searchsorted(u_sorted, np.arange(self.n_users + 1))
        return [np.unique(i_sorted[bounds[u] : bounds[u + 1]]) for u in range(self.n_users)]

    def test_users_relevant(self) -> tuple[list[int], list[list[int]]]:
        """Users with test interactions (ascending dense index) and their sorted distinct test items."""
        per: dict[int, set[int]] = {}
        for u, i in zip(self.test.user.tolist(), self.test.item.tolist()):
            per.setdefault(u, set()).add(i)
        users = sorted(per)
        return users, [sorted(per[u]) for u in users]

    def histories(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per user, train (ts, item) sorted by (ts, item): the order twotower's UserHistories uses."""
        order = np.lexsort((self.train.item, self.train.ts, self.train.user))
        u = self.train.user[order]
        bounds = np.searchsorted(u, np.arange(self.n_users + 1))
        ts = self.train.ts[order]
        it = self.train.item[order]
        return (
            [ts[bounds[x] : bounds[x + 1]] for x in range(self.n_users)],
            [it[bounds[x] : bounds[x + 1]] for x in range(self.n_users)],
        )


def _read_ids(path: Path, col: str) -> list[str]:
    return pq.read_table(path, columns=[col]).column(col).to_pylist()


def _read_part(path: Path, users: Vocab, items: Vocab) -> Part:
    t = pq.read_table(path, columns=["user", "item", "ts"])
    us = t.column("user").to_pylist()
    its = t.column("item").to_pylist()
    return Part(
        user=np.fromiter((users.insert(x) for x in us), dtype=np.int64, count=len(us)),
        item=np.fromiter((items.insert(x) for x in its), dtype=np.int64, count=len(its)),
        ts=t.column("ts").to_numpy().astype(np.int64),
    )


def load(dir: str | Path) -> Dataset:
    d = Path(dir)
    for f in ("interactions.parquet", "train.parquet", "test.parquet"):
        if not (d / f).exists():
            raise SystemExit(f"{d / f}: missing (run `twotower data split` on {d} first)")
    made_by = "twotower"
    mf = d / "manifest.json"
    if mf.exists():
        try:
            made_by = (json.loads(mf.read_text()).get("extra") or {}).get("made_by", "twotower")
        except json.JSONDecodeError:
            pass
    items = Vocab(_read_ids(d / "items.parquet", "item")) if (d / "items.parquet").exists() else Vocab()
    users = Vocab(_read_ids(d / "users.parquet", "user")) if (d / "users.parquet").exists() else Vocab()
    _read_part(d / "interactions.parquet", users, items)  # only for the vocabulary order
    train = _read_part(d / "train.parquet", users, items)
    test = _read_part(d / "test.parquet", users, items)
    ds = Dataset(dir=d, users=users, items=items, train=train, test=test, made_by=made_by)

    ds.item_genres = [[] for _ in range(len(items))]
    if (d / "items.parquet").exists():
        t = pq.read_table(d / "items.parquet")
        if "genres" in t.column_names:
            for iid, gs in zip(t.column("item").to_pylist(), t.column("genres").to_pylist()):
                ds.item_genres[items.index[iid]] = [ds.genre_vocab.insert(g) for g in (gs or []) if g is not None]
    if (d / "users.parquet").exists():
        t = pq.read_table(d / "users.parquet")
        ids = t.column("user").to_pylist()
        for name in t.column_names:
            if name == "user":
                continue
            vals = [None if v is None else str(v) for v in t.column(name).to_pylist()]
            v = Vocab(x for x in vals if x is not None)
            oov = len(v)
            arr = np.full(len(users), oov, dtype=np.int64)
            for uid, x in zip(ids, vals):
                if x is not None:
                    arr[users.index[uid]] = v.index[x]
            ds.user_cats[name] = (oov + 1, arr)
    return ds


# -------------------------------------------------------------------------------------------------------------
# Fallback importer + temporal split (only while the twotower CLI cannot do it)
# -------------------------------------------------------------------------------------------------------------

ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]


def _lines(p: Path) -> list[str]:
    return p.read_bytes().decode("latin-1").splitlines()


def fallback_import(src: str | Path, out: str | Path, limit: int | None = None) -> None:
    """MovieLens 100K (u.data) or 1M (ratings.dat) folder -> dataset dir (interactions/items/users)."""
    src, out = Path(src), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, items, users = [], [], []
    if (src / "u.data").exists():
        for ln in _lines(src / "u.data")[: limit or None]:
            u, i, r, t = ln.split("\t")
            rows.append((u, i, float(r), int(t)))
        for ln in _lines(src / "u.item"):
            f = ln.split("|")
            if len(f) < 24:
                continue
            items.append((f[0], f[1], [g for g, flag in zip(ML100K_GENRES, f[5:24]) if flag == "1"], {}))
        for ln in _lines(src / "u.user"):
            f = ln.split("|")
            users.append((f[0], {"age": f[1], "gender": f[2], "occupation": f[3], "zip_prefix": f[4][:2]}))
    elif (src / "ratings.dat").exists():
        for ln in _lines(src / "ratings.dat")[: limit or None]:
            u, i, r, t = ln.split("::")
            rows.append((u, i, float(r), int(t)))
        for ln in _lines(src / "movies.dat"):
            f = ln.split("::")
            items.append((f[0], f[1], [g for g in f[2].split("|") if g], {}))
        for ln in _lines(src / "users.dat"):
            f = ln.split("::")
            users.append((f[0], {"gender": f[1], "age": f[2], "occupation": f[3], "zip_prefix": f[4][:2]}))
    else:
        raise SystemExit(f"{src}: neither u.data (MovieLens 100K) nor ratings.dat (MovieLens 1M)")
    rows.sort(key=lambda r: (r[0], r[3], r[1]))
    pq.write_table(_interactions_table(rows), out / "interactions.parquet")
    pq.write_table(
        pa.table(
            {
                "item": [x[0] for x in items],
                "title": [x[1] for x in items],
                "genres": pa.array([x[2] for x in items], type=pa.list_(pa.utf8())),
            }
        ),
        out / "items.parquet",
    )
    cols = sorted({k for _, c in users for k in c})
    pq.write_table(
        pa.table({"user": [u for u, _ in users], **{k: [c.get(k) for _, c in users] for k in cols}}),
        out / "users.parquet",
    )
    (out / "manifest.json").write_text(
        json.dumps({"kind": "dataset", "extra": {"made_by": "peers-fallback", "source": str(src), "limit": limit}})
    )


def _interactions_table(rows) -> pa.Table:
    return pa.table(
        {
            "user": pa.array([r[0] for r in rows], pa.utf8()),
            "item": pa.array([r[1] for r in rows], pa.utf8()),
            "weight": pa.array([r[2] for r in rows], pa.float32()),
            "ts": pa.array([r[3] for r in rows], pa.int64()),
        }
    )


def fallback_split(dir: str | Path, test_fraction: float = 0.2) -> None:
    """Per-user temporal split: each user's last max(1, floor(f * n)) interactions, ordered by (ts, item) with
    items compared by their dense index (items.parquet order; numeric order for MovieLens). This reproduces the
    popularity row of the reference table exactly on ML-100K (0.059 / 0.196 / 0.317 / 0.111 / 0.519);
    rounding instead of flooring, or comparing item ids as strings, moves R@10 to 0.061-0.062."""
    d = Path(dir)
    order = {}
    if (d / "items.parquet").exists():
        order = {x: j for j, x in enumerate(_read_ids(d / "items.parquet", "item"))}
    t = pq.read_table(d / "interactions.parquet")
    rows = list(zip(*(t.column(c).to_pylist() for c in ("user", "item", "weight", "ts"))))
    for r in rows:
        order.setdefault(r[1], len(order))
    per: dict[str, list] = {}
    for r in rows:
        per.setdefault(r[0], []).append(r)
    train, test = [], []
    for u in sorted(per):
        rs = sorted(per[u], key=lambda r: (r[3], order[r[1]]))
        n_test = min(len(rs), max(1, int(math.floor(test_fraction * len(rs)))))
        train.extend(rs[: len(rs) - n_test])
        test.extend(rs[len(rs) - n_test :])
    pq.write_table(_interactions_table(train), d / "train.parquet")
    pq.write_table(_interactions_table(test), d / "test.parquet")
