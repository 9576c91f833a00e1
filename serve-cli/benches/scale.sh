#!/usr/bin/env bash
# The whole path at the size of a real catalogue, one stage at a time, with each stage's wall time
# and peak memory: synth → export → import → split → train (the default plan) → eval → index build →
# open (query shell: load, `stats`, quit) → `recommend --all --k 100`.
#
#   serve-cli/benches/scale.sh WORKDIR [BINARY ...]
#
# Defaults: 200,000 users, 1,000,000 items, 10,000,000 interactions, 256 clusters, seed 7 (override
# with USERS, ITEMS, INTERACTIONS, CLUSTERS, SEED). The dataset is made once, by the first binary, and
# shared; every binary then runs train → recommend on it, so two binaries (an older build beside the
# current one) are compared in one run on the same data. TRAIN_ARGS adds flags to `train` (e.g.
# "--budget 20m"); STAGES limits the per-binary stages (default "train eval index open recommend").
# Prints one table row per stage: seconds and peak resident memory (GNU time's maximum RSS).
set -euo pipefail
work=${1:?work dir}; shift
bins=("$@"); [ ${#bins[@]} -gt 0 ] || bins=(target/release/twotower)
users=${USERS:-200000}; items=${ITEMS:-1000000}; inter=${INTERACTIONS:-10000000}
clusters=${CLUSTERS:-256}; seed=${SEED:-7}
stages=${STAGES:-"train eval index open recommend"}
threads=${THREADS:-2}
[ -x /usr/bin/time ] || { echo "GNU time not found: apt-get install time" >&2; exit 1; }
mkdir -p "$work"
log="$work/scale.log"; : > "$log"

# run LABEL BIN ARGS...: one stage under GNU time; prints "label seconds MiB" and leaves its output
# file in $out.
run() {
  local label=$1; shift
  out="$work/$(echo "$label" | tr -c 'a-zA-Z0-9\n' '_').out"
  if ! /usr/bin/time -f '%e %M' -o "$out.time" "$@" > "$out" 2>&1; then
    echo "stage '$label' failed; its output:" >&2; tail -30 "$out" >&2; exit 1
  fi
  read -r secs kib < "$out.time"
  printf '%-34s %10.1f %10.0f\n' "$label" "$secs" "$((kib / 1024))" | tee -a "$log"
}

first=${bins[0]}
printf '%-34s %10s %10s\n' stage seconds "peak MiB" | tee -a "$log"
ds="$work/ds"
if [ ! -f "$ds/test.parquet" ]; then
  rm -rf "$work/syn" "$work/pq" "$ds"
  run "data synth" "$first" --quiet data synth --out "$work/syn" --users "$users" --items "$items" \
    --interactions "$inter" --clusters "$clusters" --seed "$seed"
  run "data export" "$first" --quiet data export --data "$work/syn" --out "$work/pq"
  run "data import (parquet)" "$first" --quiet data import --format parquet "$work/pq/interactions.parquet" \
    --items "$work/pq/items.parquet" --out "$ds" --time-col ts --weight-col weight --dedup keep-all
  run "data split (temporal 0.2)" "$first" --quiet data split --data "$ds" --strategy temporal --test-fraction 0.2
fi

for bin in "${bins[@]}"; do
  tag=$(basename "$(dirname "$(dirname "$bin")")")/$(basename "$bin")
  [ "$bin" = "$first" ] || tag="$bin"
  m="$work/model-$(echo "$tag" | tr '/.' '__')"
  idx="$m.index"
  echo "# $bin" | tee -a "$log"
  for s in $stages; do
    case $s in
      train) rm -rf "$m"; run "train ${TRAIN_ARGS:-(default plan)}" "$bin" --quiet --threads "$threads" train \
               --data "$ds" --out "$m" ${TRAIN_ARGS:-}
             grep -E '^(plan|epoch|  T |model written)' "$out" | sed 's/^/    /' ;;
      eval) run "eval" "$bin" --quiet --threads "$threads" eval --model "$m" --data "$ds"
            sed 's/^/    /' "$out" | tail -14 ;;
      index) rm -rf "$idx"; run "index build" "$bin" --quiet --threads "$threads" index build --model "$m" --index "$idx" ;;
      open) run "open (query: stats, quit)" sh -c "printf 'stats\nquit\n' | '$bin' --quiet query --model '$m' --index '$idx'" ;;
      recommend) run "recommend --all --k 100" "$bin" --quiet --threads "$threads" recommend --all --k 100 \
                   --model "$m" --index "$idx" --out "$work/recs.parquet" ;;
      *) echo "unknown stage $s" >&2; exit 1 ;;
    esac
  done
done
echo "table: $log"
