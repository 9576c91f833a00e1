#!/usr/bin/env bash
# Opening a large catalogue, an older build against a newer one, in one run on the same model,
# dataset and index: open (query shell: load, `stats`, quit) and `recommend --all --k 100`, each
# under GNU time (seconds, peak resident memory), alternating the two builds, with the machine's
# load (`uptime`) before each row. The recommendations of both must be byte-for-byte the same.
#
#   serve-cli/benches/open_side_by_side.sh WORK OLD_BINARY NEW_BINARY MODEL DATASET INDEX
#
# The newer build opens copies of DATASET and INDEX (hard links, so nothing is copied or changed
# in the originals) to which it has added what it maps: the dataset's serving tables (`data
# serving`) and an index version with `vectors.f32` (`index upgrade`, the same graph and vectors).
# The older build opens the originals. ROUNDS (default 2) sets how often each pair runs.
set -euo pipefail
work=${1:?work dir}; old=${2:?old binary}; new=${3:?new binary}
model=${4:?model dir}; data=${5:?dataset dir}; index=${6:?index dir}
rounds=${ROUNDS:-2}
[ -x /usr/bin/time ] || { echo "GNU time not found: apt-get install time" >&2; exit 1; }
mkdir -p "$work"
rm -rf "$work/ds" "$work/idx"
cp -al "$data" "$work/ds"
cp -al "$index" "$work/idx"
"$new" --quiet data serving --data "$work/ds" >/dev/null
"$new" --quiet index upgrade --index "$work/idx" >/dev/null

# row LABEL CMD...: one timed run; prints "label  seconds  peak GB  load".
row() {
  local label=$1; shift
  local load; load=$(uptime | sed 's/.*load average: //')
  /usr/bin/time -f '%e %M' -o "$work/t" "$@" > "$work/out" 2>&1 || { tail -20 "$work/out" >&2; exit 1; }
  read -r secs kib < "$work/t"
  printf '%-44s %8.2f s %7.2f GB   load %s\n' "$label" "$secs" "$(echo "$kib / 1048576" | bc -l)" "$load"
}
open_old() { printf 'stats\nquit\n' | "$old" --quiet query --model "$model" --index "$index"; }
open_new() { printf 'stats\nquit\n' | "$new" --quiet query --model "$model" --index "$work/idx" --data "$work/ds"; }
export -f open_old open_new; export old new model index work

for r in $(seq "$rounds"); do
  row "old: open (query: stats, quit)" bash -c open_old
  row "new: open (query: stats, quit)" bash -c open_new
done
# first_rows LABEL BINARY ARGS...: seconds from start until the first recommendations are on disk
# (`recommend --all` to JSONL, written as `.first.jsonl.tmp-…` until complete; polled every 50 ms),
# then the process is stopped.
written() { find "$work" -maxdepth 1 -name '.first.jsonl.tmp-*' -size +0 | grep -q .; }
first_rows() {
  local label=$1; shift
  rm -f "$work"/.first.jsonl.tmp-* "$work/first.jsonl"
  local t0; t0=$(date +%s.%N)
  "$@" --out "$work/first.jsonl" > /dev/null 2>&1 & local pid=$!
  while ! written && kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  local t1; t1=$(date +%s.%N)
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  rm -f "$work"/.first.jsonl.tmp-*
  printf '%-44s %8.2f s\n' "$label" "$(echo "$t1 - $t0" | bc -l)"
}
for r in $(seq "$rounds"); do
  first_rows "old: recommend --all, first rows on disk" "$old" --quiet --threads 2 recommend --all \
    --k 100 --model "$model" --index "$index"
  first_rows "new: recommend --all, first rows on disk" "$new" --quiet --threads 2 recommend --all \
    --k 100 --model "$model" --index "$work/idx" --data "$work/ds"
done
for r in $(seq "$rounds"); do
  row "old: recommend --all --k 100" "$old" --quiet --threads 2 recommend --all --k 100 \
    --model "$model" --index "$index" --out "$work/old.parquet"
  row "new: recommend --all --k 100" "$new" --quiet --threads 2 recommend --all --k 100 \
    --model "$model" --index "$work/idx" --data "$work/ds" --out "$work/new.parquet"
  cmp "$work/old.parquet" "$work/new.parquet" && echo "recommendations: byte-for-byte the same"
done
