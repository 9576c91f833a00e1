#!/usr/bin/env bash
# Build time native vs hnsw_rs vs hnswlib on the same clustered vectors, 2 threads, one run per
# (N, EFC), back to back: ann_tune builds natively and with hnsw_rs and dumps the vectors, then
# hnswlib_compare.py builds hnswlib (l2) on them.
# Usage: index/benches/peers/build_compare.sh [PYTHON] (after cargo build --release -p twotower-index --examples)
set -euo pipefail
PY=${1:-$HOME/.cache/twotower-peers-venv/bin/python}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BIN=$ROOT/target/release/examples/ann_tune
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for n in ${SIZES:-30000 100000}; do
  for efc in ${EFCS:-100 200}; do
    echo "=== n=$n dim=64 centres=$((n / 100)) spread=0.5 M=16 efc=$efc, 2 threads ==="
    RAYON_NUM_THREADS=2 "$BIN" "$n" 64 $((n / 100)) 0.5 16 "$efc" --dump "$TMP/d" | grep -v '^exact'
    THREADS=2 "$PY" "$ROOT/index/benches/peers/hnswlib_compare.py" "$TMP/d" 64 16 "$efc" l2
  done
done
