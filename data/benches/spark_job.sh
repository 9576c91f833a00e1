#!/usr/bin/env bash
# Runs data/benches/spark_job.py (PySpark 4.3.0, local[2], Java 17) and imports its output with
# twotower, checking the counts and time range against Spark's. Not part of CI.
#
#   bash data/benches/spark_job.sh [ROWS]          (default 1000000)
#
# Env: SPARK_VENV (default target/spark-venv), TWOTOWER (the binary; default target/release/twotower,
# else target/debug/twotower), KEEP=1 to keep the work directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-1000000}
venv=${SPARK_VENV:-target/spark-venv}

if ! java -version 2>&1 | grep -q 'version "17'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q openjdk-17-jre-headless
  else
    echo "Java 17 is needed: apt-get install openjdk-17-jre-headless" >&2
    exit 1
  fi
fi
if ! "$venv/bin/python" -c 'import pyspark, sys; sys.exit(pyspark.__version__ != "4.3.0")' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check pyspark==4.3.0
fi

bin=${TWOTOWER:-}
if [ -z "$bin" ]; then
  for b in target/release/twotower target/debug/twotower; do
    if [ -x "$b" ]; then bin=$b; break; fi
  done
fi
if [ -z "$bin" ]; then
  cargo build --release -p twotower-cli
  bin=target/release/twotower
fi

work=$(mktemp -d)
if [ "${KEEP:-0}" != 1 ]; then trap 'rm -rf "$work"' EXIT; fi
echo "work dir $work"

start=$(date +%s.%N)
"$venv/bin/python" data/benches/spark_job.py --rows "$rows" --out "$work/prepared" | tail -1 > "$work/spark.json"
spark_s=$(echo "$(date +%s.%N) - $start" | bc)
echo "spark: $(cat "$work/spark.json") in ${spark_s}s"
echo "files: $(find "$work/prepared" -type f | wc -l) ($(find "$work/prepared" -name '*.crc' | wc -l) .crc, $(find "$work/prepared" -name '_SUCCESS' | wc -l) _SUCCESS, $(find "$work/prepared" -mindepth 1 -maxdepth 1 -type d -name 'dt=*' | wc -l) dt= partitions)"

start=$(date +%s.%N)
# Spark already deduplicated and filtered: keep every row, so the counts must match exactly.
"$bin" --quiet data import --format parquet "$work/prepared" --out "$work/ds" \
  --weight-col weight --time-col ts --dedup keep-all
import_s=$(echo "$(date +%s.%N) - $start" | bc)
"$bin" --quiet data stats --json --data "$work/ds" > "$work/stats.json"
echo "twotower import: ${import_s}s"

python3 - "$work/spark.json" "$work/stats.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
t = json.load(open(sys.argv[2]))
checks = {
    "rows": (s["rows"], t["interactions"]),
    "users": (s["users"], t["interacting_users"]),
    "items": (s["items"], t["interacting_items"]),
    "min_ts": (s["min_ts"], t["time_range"][0]),
    "max_ts": (s["max_ts"], t["time_range"][1]),
}
bad = {k: v for k, v in checks.items() if v[0] != v[1]}
for k, (a, b) in checks.items():
    print(f"  {k:7} spark {a:>12}  twotower {b:>12}  {'ok' if a == b else 'MISMATCH'}")
if bad:
    sys.exit("counts differ")
print("spark and twotower agree")
PY
