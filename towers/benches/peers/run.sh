#!/usr/bin/env bash
# twotower side by side with popularity, implicit ALS, TFRS two-towers and hnswlib, in one command.
#
#   towers/benches/peers/run.sh                 # full run: ML-100K and ml-1m-partial, ANN incl. 1M synthetic
#   towers/benches/peers/run.sh --smoke         # first 5000 ratings of ML-100K, tiny grids, 20k-item ANN
#   towers/benches/peers/run.sh [run_peers.py options]   e.g. --systems popularity,als --no-ann
#
# Environment (all optional):
#   PEERS_VENV     venv location             (default ~/.cache/twotower-peers-venv; outside the repo)
#   PEERS_WORK     datasets, models, logs    (default ~/.cache/twotower-peers-work)
#   PEERS_PYTHON   interpreter for the venv  (default: python3 on PATH, 3.11 here)
#   TWOTOWER       command running the twotower binary (default: build it with
#                  `cargo build --release -p twotower-cli` and use target/release/twotower)
#   ML100K, ML1M   MovieLens folders         (default /work/shared/data/ml-100k, /work/shared/data/ml-1m-partial)
#   PEERS_THREADS  threads per system        (default 2)
#   PEERS_TWOTOWER_TRAIN_ARGS  extra flags for `twotower train` (both twotower rows)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${PEERS_VENV:-$HOME/.cache/twotower-peers-venv}"
py="${PEERS_PYTHON:-python3}"
ml100k="${ML100K:-/work/shared/data/ml-100k}"
ml1m="${ML1M:-/work/shared/data/ml-1m-partial}"
threads="${PEERS_THREADS:-2}"
cmdline="towers/benches/peers/run.sh${*:+ $*}"

say() { printf '[peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# (a) the venv, created once and reused while requirements.txt is unchanged.
stamp="$venv/.peers-requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    say "creating the venv in $venv (downloads ~600 MB the first time)"
    "$py" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q -r "$here/requirements.txt"
    "$venv/bin/pip" install -q --no-deps tensorflow-recommenders==0.7.3
    echo "$want" > "$stamp"
fi
vpy="$venv/bin/python"
"$vpy" "$here/metrics.py" --check-fixture

# The twotower binary: a release build, run directly (so its peak memory is its own, not cargo's).
if [[ -z "${TWOTOWER:-}" ]]; then
    say "building twotower (cargo build --release -p twotower-cli)"
    if (cd "$repo" && cargo build --release -q -p twotower-cli); then
        TWOTOWER="$repo/target/release/twotower"
    else
        say "cargo build failed: the twotower rows will be skipped"
        TWOTOWER=""
    fi
fi

args=()
if [[ "${1:-}" == "--smoke" ]]; then
    shift
    args+=(--dataset "ml-100k=$ml100k" --limit 5000 --quick --ann-synthetic 20000 --ann-ef 10,40,160)
else
    has_dataset=0
    for a in "$@"; do [[ "$a" == "--dataset" ]] && has_dataset=1; done
    if [[ $has_dataset == 0 ]]; then
        args+=(--dataset "ml-100k=$ml100k" --dataset "ml-1m-partial=$ml1m")
    fi
fi
export PEERS_CMDLINE="$cmdline"
exec "$vpy" "$here/run_peers.py" --twotower "$TWOTOWER" --threads "$threads" "${args[@]}" "$@"
