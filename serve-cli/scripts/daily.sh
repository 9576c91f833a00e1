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
#   STATE/datasets/NAME    the dataset as of partition NAME: the previous one, hard-linked (a
#                          dataset's files never change in place), with the partition appended. A
#                          model keeps answering from the dataset it was trained on, so a day whose
#                          candidate is refused leaves the model in service and its dataset as they were
#   STATE/dataset          a symlink to the newest dataset (the next day appends to it)
#   STATE/models/NAME      every model the job trained
#   STATE/model            a symlink to the model in service (swapped atomically); serve with
#                          `twotower serve --model STATE/model --index STATE/index`
#   STATE/index            the index directory; each accepted model adds a version
#   STATE/rejected/NAME    a candidate the gate refused, kept for inspection
# NAME is the partition's file or directory name without its extension (`day=2026-12-06`). The
# first run (no STATE/model yet) imports the partition and trains from scratch with the default
# plan; every later run appends, splits off the new partition (`data split --test-from
# last-append`), trains `--init-from STATE/model` on the training part, and evaluates the candidate
# and the served model on the new partition with `eval --by-id` (the same users, items and protocol
# for both). The candidate passes when its Recall@K is at least (1 - THRESHOLD) × the served model's.
#
# Environment:
#   TWOTOWER      the binary (default: twotower on PATH, else target/release/twotower)
#   FORMAT        the partition's format for `data import` (default parquet)
#   IMPORT_ARGS   more `data import` flags (columns, --time-col, --dedup, side files, ...); for a
#                 log of events, `--time-col ts --dedup keep-all` makes the append write only the
#                 new rows
#   TRAIN_ARGS    more `train` flags (for the first model and every candidate)
#   CANDIDATE     a model trained elsewhere to judge and put into service instead of training one
#                 (it is moved into STATE/models/NAME, or STATE/rejected/NAME when refused)
#   THRESHOLD     the largest relative drop of Recall@K accepted (default 0.02)
#   K             the cut-off of the gate's recall (default 10)
#   EVAL_USERS    `eval --sample-users` (default 5000)
#   KEEP          datasets and models kept besides the ones in service and the newest (default 7);
#                 older ones and index versions beyond them are deleted after a swap
#
# Exit status: 0 the candidate (or the first model) is in service; 3 the gate refused the
# candidate (the newest dataset keeps the partition, the model and index in service are unchanged);
# 4 the partition was already judged (nothing done); any other non-zero status: a step failed and
# nothing in service changed. Runs of one STATE are serialised by a lock.
set -euo pipefail
state=${1:?usage: daily.sh STATE PARTITION}
part=${2:?usage: daily.sh STATE PARTITION}
tt=${TWOTOWER:-$(command -v twotower || echo target/release/twotower)}
format=${FORMAT:-parquet}
threshold=${THRESHOLD:-0.02}
k=${K:-10}
eval_users=${EVAL_USERS:-5000}
keep=${KEEP:-7}
read -r -a import_args <<< "${IMPORT_ARGS:-}"
read -r -a train_args <<< "${TRAIN_ARGS:-}"
[ -e "$part" ] || { echo "daily: no partition at $part" >&2; exit 1; }
command -v python3 > /dev/null || { echo "daily: python3 is needed to read eval's JSON" >&2; exit 1; }
mkdir -p "$state/datasets" "$state/models" "$state/rejected"
exec 9> "$state/.daily.lock"
flock -n 9 || { echo "daily: another run holds $state/.daily.lock" >&2; exit 1; }

abs=$(cd "$(dirname "$part")" && pwd)/$(basename "$part")
name=$(basename "$part"); name=${name%.*}
ds="$state/datasets/$name"
candidate="$state/models/$name"
log() { echo "daily $(date -u +%FT%TZ) [$name] $*"; }

# point LINK TARGET: the symlink STATE/LINK moved to TARGET (relative to STATE) by one rename.
point() {
  ln -sfn "$2" "$state/.$1.next"
  mv -T "$state/.$1.next" "$state/$1"
}

# put_in_service: a new index version from the candidate, then STATE/model pointed at it. The index
# goes first: a server watching the index reloads the model the new version names once the
# symlink has moved (a reload between the two is refused and retried, never half-applied).
put_in_service() {
  "$tt" --quiet index build --model "$candidate" --index "$state/index"
  point model "models/$name"
  log "in service: models/$name, index version $(cat "$state/index/CURRENT" 2>/dev/null || echo '?')"
  prune
}

# prune: datasets and models beyond the KEEP newest go, except the ones in service; so do index
# versions beyond KEEP + 1.
prune() {
  local served_ds
  served_ds=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["dataset_dir"])' "$state/model/model.json")
  for dir in datasets models rejected; do
    ls -1t "$state/$dir" | tail -n +$((keep + 1)) | while read -r old; do
      local p="$state/$dir/$old"
      [ "$(cd "$p" && pwd -P)" = "$(cd "$state/model" && pwd -P)" ] && continue
      [ "$(cd "$p" && pwd -P)" = "$(cd "$served_ds" 2>/dev/null && pwd -P || true)" ] && continue
      [ "$(cd "$p" && pwd -P)" = "$(cd "$state/dataset" && pwd -P)" ] && continue
      rm -rf "$p"
    done
  done
  "$tt" --quiet index gc --index "$state/index" --keep $((keep + 1)) > /dev/null
}

if [ ! -e "$state/model" ]; then
  log "first run: importing $abs and training from scratch"
  "$tt" --quiet data import --format "$format" "$abs" --out "$ds" "${import_args[@]}"
  point dataset "datasets/$name"
  "$tt" --quiet train --data "$ds" --out "$candidate" "${train_args[@]}"
  put_in_service
  exit 0
fi

if [ "$(readlink "$state/model")" = "models/$name" ] || [ -e "$state/rejected/$name" ]; then
  log "already judged: nothing to do"
  exit 4
fi
# The newest dataset, hard-linked into this partition's, then the partition appended to it. A
# rerun after a failure later on finds the partition appended and starts again from the split.
newest=$(readlink "$state/dataset")
if [ "$newest" != "datasets/$name" ]; then
  rm -rf "$ds" "$state/.append.tmp"
  cp -al "$state/$newest" "$state/.append.tmp"
  "$tt" --quiet data import --format "$format" "$abs" --append-to "$state/.append.tmp" "${import_args[@]}"
  mv -T "$state/.append.tmp" "$ds"
  point dataset "datasets/$name"
  log "appended $abs to a copy of $newest"
fi
"$tt" --quiet data split --data "$ds" --test-from last-append

if [ -n "${CANDIDATE:-}" ]; then
  rm -rf "$candidate"
  mv "$CANDIDATE" "$candidate"
  log "candidate: $CANDIDATE, trained elsewhere"
else
  "$tt" --quiet train --data "$ds" --out "$candidate" --init-from "$state/model" "${train_args[@]}"
fi

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
  log "refused: rejected/$name kept for inspection; the model and index in service are unchanged"
  exit 3
fi
put_in_service
