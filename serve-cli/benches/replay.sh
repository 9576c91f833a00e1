#!/usr/bin/env bash
# Temporal replay: what a daily job gets from warm-starting yesterday's model instead of training
# from scratch, on real MovieLens time stamps.
#
#   serve-cli/benches/replay.sh WORKDIR SOURCE [BINARY]
#
# SOURCE is a MovieLens 100K or 1M folder (u.data or ratings.dat). The ratings are sorted by time;
# a base model (the default plan) is trained on the ratings of the first 70 % of the time range
# (CUT=rows: the first 70 % of the ratings); the rest is cut into WINDOWS (default 6) windows of
# equal time (CUT=rows: equal row counts). At window w = 1 .. WINDOWS-1 the window's log is appended
# to the dataset (`data import --append-to`, so vocabularies grow), and two models are built on
# everything so far:
#   (a) warm: `train --init-from` the previous window's warm model (the base model at w = 1), in
#       each variant of VARIANTS (see below);
#   (b) scratch: `train` with the default plan on all data so far;
# and both are judged on window w+1 (`data split --test-from last-append`: every user active in it,
# their items in it as the positives, ranking every item, training items excluded; `eval
# --sample-users 0`), beside the popularity baseline.
#
# VARIANTS (space separated) name warm-start policies: new:E trains E epochs on the window's rows
# only, replayP:E adds a P share of the older rows (replay0.2:1), all:E trains E epochs on every row.
# Prints one row per window and a summary: mean R@10 and training seconds of each variant against
# scratch. Features are MovieLens's own (the side tables of a full import, passed to every import).
set -euo pipefail
work=${1:?work dir}; src=${2:?MovieLens folder}; bin=${3:-target/release/twotower}
windows=${WINDOWS:-6}; cut=${CUT:-time}; variants=${VARIANTS:-"new:1 new:2 replay0.2:1 all:1"}
command -v python3 >/dev/null || { echo "python3 is needed to cut the log into windows" >&2; exit 1; }
rm -rf "$work"; mkdir -p "$work"
log="$work/replay.log"; : > "$log"
say() { echo "$*" | tee -a "$log"; }

if [ -f "$src/u.data" ]; then fmt=movielens-100k; else fmt=movielens-1m; fi
# The side tables (titles, genres, years, user attributes) exactly as a full import derives them.
"$bin" data import --format "$fmt" "$src" --out "$work/full" > /dev/null
"$bin" data export --data "$work/full" --out "$work/side" > /dev/null

# Windows as CSV logs (user,item,rating,ts), and their start times.
python3 - "$src" "$work" "$windows" "$cut" <<'EOF'
import os, sys
src, work, n, cut = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if os.path.exists(os.path.join(src, "u.data")):
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(src, "u.data"))]
else:
    rows = [l.rstrip("\n").split("::") for l in open(os.path.join(src, "ratings.dat"), encoding="latin-1")]
rows = sorted(((int(r[3]), r[0], r[1], r[2]) for r in rows), key=lambda r: (r[0], int(r[1]), int(r[2])))
ts = [r[0] for r in rows]
if cut == "time":
    lo, hi = ts[0], ts[-1]
    base_end = lo + 0.7 * (hi - lo)
    edges = [base_end + (hi + 1 - base_end) * k / n for k in range(n + 1)]
    idx = [next((i for i, t in enumerate(ts) if t >= e), len(ts)) for e in edges]
else:
    b = int(len(rows) * 0.7)
    idx = [b + (len(rows) - b) * k // n for k in range(n + 1)]
parts = [rows[:idx[0]]] + [rows[idx[k]:idx[k + 1]] for k in range(n)]
for k, part in enumerate(parts):
    with open(os.path.join(work, f"w{k}.csv"), "w") as f:
        f.write("user,item,rating,ts\n")
        for t, u, i, r in part:
            f.write(f"{u},{i},{r},{t}\n")
    with open(os.path.join(work, f"w{k}.start"), "w") as f:
        f.write(str(part[0][0] if part else 0))
    print(f"window {k}: {len(part)} ratings", file=sys.stderr)
EOF

imp() {  # imp CSV ARGS...: one import or append of a window's log with the side tables
  local csv=$1; shift
  "$bin" data import --format csv "$csv" --weight-col rating --time-col ts \
    --items "$work/side/items.parquet" --users "$work/side/users.parquet" "$@" > /dev/null
}
secs() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$1" "$(date +%s.%N)"; }
metric() {  # metric EVAL_JSON WHO K
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))[sys.argv[2]]; print("%.4f" % r["recall"][r["ks"].index(int(sys.argv[3]))])' "$1" "$2" "$3"
}

ds="$work/ds"
imp "$work/w0.csv" --out "$ds"
t0=$(date +%s.%N)
"$bin" train --data "$ds" --out "$work/base" > "$work/base.log" 2>&1
say "base model: $(secs "$t0") s on $(($(wc -l < "$work/w0.csv") - 1)) ratings"
for v in $variants; do cp -r "$work/base" "$work/warm-${v//[:.]/_}-0"; done

imp "$work/w1.csv" --append-to "$ds"
header="window  test_users  pop_R@10  scratch_R@10  scratch_R@100  scratch_s"
for v in $variants; do header="$header  ${v}_R@10 ${v}_R@100 ${v}_s"; done
say "$header"
for w in $(seq 1 $((windows - 1))); do
  imp "$work/w$((w + 1)).csv" --append-to "$ds"
  "$bin" data split --data "$ds" --test-from last-append > /dev/null
  start=$(cat "$work/w$w.start")
  t0=$(date +%s.%N)
  "$bin" train --data "$ds" --out "$work/scratch-$w" > "$work/scratch-$w.log" 2>&1
  s_secs=$(secs "$t0")
  "$bin" eval --model "$work/scratch-$w" --data "$ds" --sample-users 0 --json > "$work/scratch-$w.json"
  row="$w  $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"]["users"])' "$work/scratch-$w.json")"
  row="$row  $(metric "$work/scratch-$w.json" popularity 10)  $(metric "$work/scratch-$w.json" model 10)"
  row="$row  $(metric "$work/scratch-$w.json" model 100)  $s_secs"
  for v in $variants; do
    name=${v//[:.]/_}; policy=${v%%:*}; epochs=${v##*:}
    case $policy in
      new) extra=(--train-from "$start") ;;
      replay*) extra=(--train-from "$start" --replay "${policy#replay}") ;;
      all) extra=() ;;
      *) echo "unknown variant $v" >&2; exit 1 ;;
    esac
    t0=$(date +%s.%N)
    "$bin" train --data "$ds" --out "$work/warm-$name-$w" --init-from "$work/warm-$name-$((w - 1))" \
      --epochs "$epochs" "${extra[@]}" > "$work/warm-$name-$w.log" 2>&1
    v_secs=$(secs "$t0")
    "$bin" eval --model "$work/warm-$name-$w" --data "$ds" --sample-users 0 --json > "$work/warm-$name-$w.json"
    row="$row  $(metric "$work/warm-$name-$w.json" model 10) $(metric "$work/warm-$name-$w.json" model 100) $v_secs"
  done
  say "$row"
done
python3 - "$log" "$variants" <<'EOF' | tee -a "$log"
import sys
lines = [l.split() for l in open(sys.argv[1]) if l[:1].isdigit()]
variants = sys.argv[2].split()
mean = lambda xs: sum(xs) / len(xs)
s10 = mean([float(l[3]) for l in lines]); ss = sum(float(l[5]) for l in lines)
print(f"scratch: mean R@10 {s10:.4f}, {ss:.0f} s of training over {len(lines)} windows")
for k, v in enumerate(variants):
    r10 = mean([float(l[6 + 3 * k]) for l in lines]); vs = sum(float(l[8 + 3 * k]) for l in lines)
    print(f"warm {v}: mean R@10 {r10:.4f} ({r10 / s10:.3f}x scratch), {vs:.0f} s ({vs / ss:.3f}x scratch)")
EOF
