"""Retrieval metrics, defined exactly as twotower's Rust code defines them (towers/src/metrics.rs).

Every system of the side-by-side comparison is scored by this module, so that the only difference between
two rows of the table is the model. The definitions mirror the Rust functions line by line:

* ``recall_at_k(ranked, relevant, k)``  = hits in ``ranked[:k]`` / ``len(relevant)`` (0 when nothing is relevant)
* ``ndcg_at_k(ranked, relevant, k)``    = sum over hits at 0-based rank r < k of 1/log2(r + 2), divided by the
  ideal DCG over ``min(k, len(relevant))`` hits (binary gains)
* ``hit_rate_at_k(ranked, relevant, k)`` = 1 when any of ``ranked[:k]`` is relevant
* ``eval_report(rankings, relevant, ks)`` = the means over users with at least one relevant item
  (``EvalReport::from_rankings``), summed in user order in float64 like the Rust code
* ``select_top(scores, k, exclude)``    = the top k item indices of float32 ``scores`` outside ``exclude``, NaN
  scores dropped, ordered by score descending with ``f32::total_cmp`` and ties broken by the lower index
  (``metrics::select_top``)

The protocol around them (``evaluate_scores``) is the one of ``twotower eval``: per test user (a user with at
least one test interaction, in ascending dense index), rank ALL catalogue items except the user's training
items; the relevant set is the user's distinct test items.

``towers/tests/peer_metrics.rs`` checks that the Rust functions reproduce the values this module writes to
``fixture_metrics.json`` (``python3 metrics.py --write-fixture``; needs only numpy).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

DEFAULT_KS = (10, 50, 100)


# ---------------------------------------------------------------------------------------------------------
# Per-ranking metrics (towers::metrics::{recall_at_k, ndcg_at_k, hit_rate_at_k})
# ---------------------------------------------------------------------------------------------------------


def _hits(ranked: Sequence[int], relevant: Sequence[int], k: int) -> int:
    rel = set(int(x) for x in relevant)
    return sum(1 for it in list(ranked)[:k] if int(it) in rel)


def recall_at_k(ranked: Sequence[int], relevant: Sequence[int], k: int) -> float:
    if len(relevant) == 0:
        return 0.0
    return _hits(ranked, relevant, k) / len(relevant)


def ndcg_at_k(ranked: Sequence[int], relevant: Sequence[int], k: int) -> float:
    if len(relevant) == 0:
        return 0.0
    rel = set(int(x) for x in relevant)
    dcg = 0.0
    for r, it in enumerate(list(ranked)[:k]):
        if int(it) in rel:
            dcg += 1.0 / math.log2(r + 2)
    ideal = 0.0
    for r in range(min(len(relevant), k)):
        ideal += 1.0 / math.log2(r + 2)
    return dcg / ideal


def hit_rate_at_k(ranked: Sequence[int], relevant: Sequence[int], k: int) -> float:
    return 1.0 if _hits(ranked, relevant, k) > 0 else 0.0


def eval_report(rankings: Sequence[Sequence[int]], relevant: Sequence[Sequence[int]], ks: Iterable[int]) -> dict:
    """Means over users with a non-empty relevant set: ``{"users", "ks", "recall", "ndcg", "hit_rate"}``
    (the JSON shape of the Rust ``EvalReport``)."""
    ks = sorted(set(int(k) for k in ks))
    rep = {"users": 0, "ks": ks, "recall": [0.0] * len(ks), "ndcg": [0.0] * len(ks), "hit_rate": [0.0] * len(ks)}
    for ranked, rel in zip(rankings, relevant):
        if len(rel) == 0:
            continue
        rep["users"] += 1
        for j, k in enumerate(ks):
            rep["recall"][j] += recall_at_k(ranked, rel, k)
            rep["ndcg"][j] += ndcg_at_k(ranked, rel, k)
            rep["hit_rate"][j] += hit_rate_at_k(ranked, rel, k)
    n = float(max(rep["users"], 1))
    for key in ("recall", "ndcg", "hit_rate"):
        rep[key] = [v / n for v in rep[key]]
    return rep


def flat(rep: dict) -> dict:
    """``{"R@10": .., "NDCG@10": .., "HR@10": .., ...}`` from an eval report."""
    out = {"users": rep["users"]}
    for j, k in enumerate(rep["ks"]):
        out[f"R@{k}"] = rep["recall"][j]
        out[f"NDCG@{k}"] = rep["ndcg"][j]
        out[f"HR@{k}"] = rep["hit_rate"][j]
    return out


# ---------------------------------------------------------------------------------------------------------
# Ranking (towers::metrics::select_top)
# ---------------------------------------------------------------------------------------------------------


def total_order_key(scores: np.ndarray) -> np.ndarray:
    """int64 keys that sort float32 values as Rust's ``f32::total_cmp`` does (-0.0 < +0.0, NaN sign-aware)."""
    s = np.ascontiguousarray(scores, dtype=np.float32)
    bits = s.view(np.int32).astype(np.int64)
    # Rust: left ^= (((left >> 31) as u32) >> 1) as i32  -> flips the magnitude bits of negative values.
    mask = np.where(bits < 0, np.int64(0x7FFFFFFF), np.int64(0))
    return bits ^ mask


_EXCLUDED = np.int64(-(1 << 40))  # below every total_order_key (those fit in int32)


def select_top(scores: Sequence[float], k: int, exclude: Sequence[int] = ()) -> list[int]:
    """Top-k indices of one score row, best first; see the module doc."""
    return select_top_rows(np.asarray(scores, dtype=np.float32)[None, :], k, [exclude])[0]


def select_top_rows(scores: np.ndarray, k: int, excludes: Sequence[Sequence[int]]) -> list[list[int]]:
    """:func:`select_top` for each row of a 2-d float32 score block (one row per query)."""
    scores = np.asarray(scores, dtype=np.float32)
    key = total_order_key(scores)
    key[np.isnan(scores)] = _EXCLUDED
    for r, ex in enumerate(excludes):
        if len(ex):
            key[r, np.asarray(ex, dtype=np.int64)] = _EXCLUDED
    # Stable sort of the negated key: descending score, ascending index among equal scores.
    order = np.argsort(-key, axis=1, kind="stable")[:, :k]
    out = []
    for r in range(scores.shape[0]):
        row = order[r]
        valid = key[r, row] != _EXCLUDED
        out.append([int(i) for i in row[valid]])
    return out


def evaluate_scores(
    score_block: Callable[[np.ndarray], np.ndarray],
    test_users: Sequence[int],
    relevant: Sequence[Sequence[int]],
    train_items: Sequence[Sequence[int]],
    ks: Iterable[int] = DEFAULT_KS,
    block: int = 512,
) -> dict:
    """Scores every test user against the whole catalogue and returns the eval report.

    ``score_block(users)`` returns a float32 ``[len(users), n_items]`` matrix; ``train_items[u]`` are the
    items excluded for dense user ``u``; ``relevant[j]`` belongs to ``test_users[j]``.
    """
    ks = sorted(set(int(k) for k in ks))
    kmax = max(ks)
    rankings: list[list[int]] = []
    users = np.asarray(test_users, dtype=np.int64)
    for start in range(0, len(users), block):
        us = users[start : start + block]
        s = score_block(us)
        rankings.extend(select_top_rows(s, kmax, [train_items[u] for u in us]))
    return eval_report(rankings, relevant, ks)


# ---------------------------------------------------------------------------------------------------------
# Fixture for towers/tests/peer_metrics.rs
# ---------------------------------------------------------------------------------------------------------

FIXTURE = Path(__file__).with_name("fixture_metrics.json")


def build_fixture() -> dict:
    """Hand cases (empty relevant set, k beyond the list, hits at the first and last position, a relevant
    set longer than k) plus seeded random ones; every expected value computed by this module."""
    rng = np.random.default_rng(20240607)
    cases = [
        {"ranked": [5, 3, 9, 1], "relevant": [1, 3, 7]},
        {"ranked": [3, 1, 7], "relevant": [1, 3, 7]},
        {"ranked": [2, 4, 6, 8], "relevant": []},
        {"ranked": [], "relevant": [1, 2]},
        {"ranked": [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21], "relevant": [21]},
        {"ranked": list(range(30)), "relevant": list(range(0, 60, 2))},
        {"ranked": [4, 8, 15, 16, 23, 42], "relevant": [42, 4]},
    ]
    for _ in range(12):
        n_items = int(rng.integers(20, 200))
        ranked = rng.permutation(n_items)[: int(rng.integers(0, 120))].tolist()
        relevant = sorted(rng.choice(n_items, size=int(rng.integers(1, 25)), replace=False).tolist())
        cases.append({"ranked": [int(x) for x in ranked], "relevant": [int(x) for x in relevant]})
    ks = [1, 2, 3, 5, 10, 50, 100]
    for c in cases:
        c["expected"] = {
            str(k): {
                "recall": recall_at_k(c["ranked"], c["relevant"], k),
                "ndcg": ndcg_at_k(c["ranked"], c["relevant"], k),
                "hit_rate": hit_rate_at_k(c["ranked"], c["relevant"], k),
            }
            for k in ks
        }
    report_ks = [10, 50, 5, 1]  # unsorted with a duplicate-free set: the Rust report sorts them
    report = eval_report([c["ranked"] for c in cases], [c["relevant"] for c in cases], report_ks)

    # select_top: ties (broken by lower index), exclusion, NaN dropped, -0.0 below +0.0, k beyond candidates.
    rankings = []
    tie_rows = [
        ([0.5, 0.9, 0.9, 0.1, 0.9, -1.0], 4, [2]),
        ([0.0, -0.0, 0.0, -0.0, 1e-30], 5, []),
        ([float("nan"), 3.0, 2.0, float("nan"), 2.0], 10, [1]),
        ([1.0, 2.0, 3.0], 3, [0, 1, 2]),
    ]
    for scores, k, ex in tie_rows:
        rankings.append({"scores": scores, "k": k, "exclude": ex})
    for _ in range(6):
        n = int(rng.integers(5, 300))
        # coarse scores force many ties
        scores = (rng.integers(-20, 20, size=n) / 4.0).astype(np.float32).tolist()
        ex = sorted(rng.choice(n, size=int(rng.integers(0, n // 2 + 1)), replace=False).tolist())
        rankings.append({"scores": scores, "k": int(rng.integers(1, 120)), "exclude": [int(x) for x in ex]})
    for r in rankings:
        r["expected"] = select_top(r["scores"], r["k"], r["exclude"])
        # JSON has no NaN: encode it as null (the Rust test maps null to f32::NAN).
        r["scores"] = [None if (isinstance(s, float) and math.isnan(s)) else s for s in r["scores"]]
    return {
        "about": "Written by towers/benches/peers/metrics.py --write-fixture; checked by towers/tests/peer_metrics.rs. "
        "Per-case metric values, an averaged report, and select_top rankings computed by the Python peers script.",
        "ks": ks,
        "cases": cases,
        "report": {"ks": report_ks, "expected": report},
        "select_top": rankings,
    }


def dump_fixture(fx: dict) -> str:
    """JSON with one case per line (readable diffs)."""
    parts = []
    for k, v in fx.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            body = ",\n  ".join(json.dumps(x) for x in v)
            parts.append(f" {json.dumps(k)}: [\n  {body}\n ]")
        else:
            parts.append(f" {json.dumps(k)}: {json.dumps(v)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _selftest() -> None:
    # The hand case of towers/src/metrics.rs.
    ranked, rel = [5, 3, 9, 1], [3, 1, 7]
    assert abs(recall_at_k(ranked, rel, 2) - 1 / 3) < 1e-12
    assert abs(recall_at_k(ranked, rel, 4) - 2 / 3) < 1e-12
    assert hit_rate_at_k(ranked, rel, 1) == 0.0 and hit_rate_at_k(ranked, rel, 2) == 1.0
    want = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 0.5)
    assert abs(ndcg_at_k(ranked, rel, 4) - want) < 1e-12
    assert ndcg_at_k([3, 1, 7], rel, 3) == 1.0
    assert select_top([0.1, 0.9, 0.5, 0.9, -1.0], 3, [1]) == [3, 2, 0]
    r = eval_report([[1, 2], [3, 4], [9]], [[1], [5], []], [1, 2])
    assert r["users"] == 2 and r["recall"] == [0.5, 0.5]
    assert select_top([0.0, -0.0], 2) == [0, 1]
    assert select_top([-0.0, 0.0], 2) == [1, 0]


if __name__ == "__main__":
    _selftest()
    if "--write-fixture" in sys.argv:
        FIXTURE.write_text(dump_fixture(build_fixture()))
        print(f"wrote {FIXTURE}")
    elif "--check-fixture" in sys.argv:
        want = json.loads(json.dumps(build_fixture()))
        have = json.loads(FIXTURE.read_text())
        if want != have:
            sys.exit(f"{FIXTURE} is stale: rerun `python3 metrics.py --write-fixture`")
        print("metrics self-test ok; fixture up to date")
    else:
        print("metrics self-test ok")
