#!/usr/bin/env bash
# The daily job: add today's partition to the dataset, warm-start a candidate from the served
# model, judge both on the newest day, and put the candidate into service (a new index version,
# then the model) only when it is not worse by more than THRESHOLD.
#
#   serve-cli/scripts/daily.sh STATE PARTITION
#
#   cron:  15 3 * * *  /opt/twotower/serve-cli/scripts/daily.sh /srv/reco /data/events/day=$(date -d yesterday +\%F) >> /var/log/reco-daily.log 2>&1
#
# STATE is the job's directory:
#   STATE/dataset          the dataset, grown by one `data import --append-to` a day
#   STATE/models/NAME      every model the job trained (NAME: the partition's name)
#   STATE/model            a symlink to the model in service (swapped atomically); serve with
#                          `twotower serve --model STATE/model --index STATE/index --watch`
#   STATE/index            the index directory; each accepted model adds a version
#   STATE/rejected/NAME    a candidate the gate refused, kept for inspection
# The first run (no STATE/model yet) imports the partition as the dataset and trains from scratch
# with the default plan; every later run appends, splits off the new partition (`data split
# --test-from last-append`), trains `--init-from STATE/model` on the training part, and evaluates
# the candidate and the served model on the new partition with `eval --by-id` (the same users,
# items and protocol for both). The candidate passes when its Recall@K is at least
# (1 - THRESHOLD) × the served model's.
#
# Environment:
#   TWOTOWER      the binary (default: twotower on PATH, else target/release/twotower)
#   FORMAT        the partition's format for `data import` (default parquet)
#   IMPORT_ARGS   more `data import` flags (columns, --time-col, --dedup, side files, ...)
#   TRAIN_ARGS    more `train` flags for the candidate
#   THRESHOLD     the largest relative drop of Recall@K accepted (default 0.02)
#   K             the cut-off of the gate's recall (default 10)
#   EVAL_USERS    `eval --sample-users` (default 5000)
#
# Exit status: 0 the candidate (or the first model) is in service; 3 the gate refused the
# candidate (the dataset keeps the new partition, the model and index in service are unchanged);
# 4 the partition was already appended (nothing done); any other non-zero status: a step failed and
# nothing in service changed. Runs of one STATE are serialised by a lock.
set -euo pipefail
state=${1:?usage: daily.sh STATE PARTITION}
part=${2:?usage: daily.sh STATE PARTITION}
tt=${TWOTOWER:-$(command -v twotower || echo target/release/twotower)}
format=${FORMAT:-parquet}
threshold=${THRESHOLD:-0.02}
k=${K:-10}
eval_users=${EVAL_USERS:-5000}
read -r -a import_args <<< "${IMPORT_ARGS:-}"
read -r -a train_args <<< "${TRAIN_ARGS:-}"
[ -e "$part" ] || { echo "daily: no partition at $part" >&2; exit 1; }
mkdir -p "$state/models" "$state/rejected"
exec 9> "$state/.daily.lock"
flock -n 9 || { echo "daily: another run holds $state/.daily.lock" >&2; exit 1; }

name=$(basename "$part"); name=${name%.*}
ds="$state/dataset"
log() { echo "daily $(date -u +%FT%TZ) [$name] $*"; }

# put_in_service MODEL: a new index version from MODEL, then STATE/model pointed at it. The index
# goes first: a server watching the index reloads the model the new version names once the
# symlink has moved (a reload between the two is refused and retried, never half-applied).
put_in_service() {
  local model=$1
  "$tt" --quiet index build --model "$model" --index "$state/index"
  ln -sfn "models/$(basename "$model")" "$state/.model.next"
  mv -T "$state/.model.next" "$state/model"
  log "in service: $(readlink "$state/model"), index $(cat "$state/index/CURRENT" 2>/dev/null || echo '?')"
}

if [ ! -e "$state/model" ]; then
  log "first run: importing $part and training from scratch"
  "$tt" --quiet data import --format "$format" "$part" --out "$ds" "${import_args[@]}"
  "$tt" --quiet train --data "$ds" --out "$state/models/$name" "${train_args[@]}"
  put_in_service "$state/models/$name"
  exit 0
fi

# A partition appended before (by path) is not appended twice: a rerun after a failure later on
# starts again from the split.
abs=$(cd "$(dirname "$part")" && pwd)/$(basename "$part")
if grep -qF "\"path\": \"$abs\"" "$ds/manifest.json" || grep -qF "\"path\": \"$part\"" "$ds/manifest.json"; then
  if [ -e "$state/models/$name" ] && [ "$(readlink "$state/model")" = "models/$name" ]; then
    log "already appended and in service: nothing to do"
    exit 4
  fi
  log "already appended: continuing from the split"
else
  "$tt" --quiet data import --format "$format" "$abs" --append-to "$ds" "${import_args[@]}"
  log "appended $abs"
fi
"$tt" --quiet data split --data "$ds" --test-from last-append

candidate="$state/models/$name"
served=$(cd "$state/model" && pwd -P)
if [ "$served" = "$(cd "$candidate" 2>/dev/null && pwd -P || true)" ]; then
  echo "daily: $candidate is the model in service; give the partition another name" >&2
  exit 1
fi
"$tt" --quiet train --data "$ds" --out "$candidate" --init-from "$state/model" "${train_args[@]}"

recall() {  # recall MODEL: the gate's Recall@K of MODEL on the new partition
  "$tt" --quiet eval --model "$1" --data "$ds" --by-id --k "$k" --sample-users "$eval_users" --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["model"]["recall"][0])'
}
new=$(recall "$candidate")
old=$(recall "$state/model")
verdict=$(python3 -c 'import sys; n, o, t = map(float, sys.argv[1:]); print("pass" if n >= (1 - t) * o else "fail")' "$new" "$old" "$threshold")
log "gate: Recall@$k candidate $new, in service $old, threshold $threshold: $verdict"
if [ "$verdict" != pass ]; then
  rm -rf "$state/rejected/$name"
  mv "$candidate" "$state/rejected/$name"
  log "refused: $state/rejected/$name kept for inspection; the model and index in service are unchanged"
  exit 3
fi
put_in_service "$candidate"
