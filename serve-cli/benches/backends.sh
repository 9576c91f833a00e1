#!/usr/bin/env bash
# The same model served from each index backend, side by side in one run: `recommend --all --k 100`
# (users/s, recall@100 against exact search of the directory index) and `serve` under wrk (k=10,
# requests/s, p50/p99).
#
#   serve-cli/benches/backends.sh MODEL_DIR INDEX [INDEX ...]
#
# Each INDEX is a directory or milvus://HOST:PORT/NAME built from MODEL_DIR; the first must be a
# directory (its exact search is the reference). A batch over Milvus Lite needs a longer per-call
# deadline than serving: give e.g. milvus://…/NAME?timeout_ms=60000. Needs wrk and python3.
set -euo pipefail
model=${1:?model dir}; shift
ref=${1:?a directory index first}
bin=${TWOTOWER:-target/release/twotower}
secs=${SECS:-10}; conns=${CONNS:-16}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
tmp=$(mktemp -d); server=; trap '[ -n "$server" ] && kill $server 2>/dev/null; rm -rf "$tmp"' EXIT

"$bin" recommend --quiet --all --k 100 --exact --model "$model" --index "$ref" --out "$tmp/exact.jsonl" > /dev/null 2>&1
python3 -c "
import json
users=sorted({json.loads(l)['user'] for l in open('$tmp/exact.jsonl')})
print('users = {' + ','.join(json.dumps(u) for u in users) + '}')
" > "$tmp/users.lua"
cat > "$tmp/load.lua" <<LUA
dofile("$tmp/users.lua")
math.randomseed(7)
request = function()
  return wrk.format("GET", "/v1/users/" .. users[math.random(#users)] .. "/recommendations?k=10")
end
LUA

printf '%-44s %10s %10s %10s %9s %9s %7s\n' index "users/s" "recall@100" "req/s" "p50 ms" "p99 ms" non2xx
for index in "$@"; do
  line=$("$bin" recommend --quiet --all --k 100 --model "$model" --index "$index" --out "$tmp/recs.jsonl" 2>&1)
  ups=$(echo "$line" | sed -n 's/.*(\([0-9.]*\) users\/s).*/\1/p')
  recall=$(python3 -c "
import json, collections
def load(p):
    d = collections.defaultdict(set)
    for l in open(p):
        r = json.loads(l); d[r['user']].add(r['item'])
    return d
e, g = load('$tmp/exact.jsonl'), load('$tmp/recs.jsonl')
print('%.4f' % (sum(len(e[u] & g[u]) / max(1, len(e[u])) for u in e) / max(1, len(e))))")
  "$bin" serve --quiet --model "$model" --index "$index" --addr 127.0.0.1:0 > "$tmp/serve.out" 2> "$tmp/serve.err" &
  server=$!
  for _ in $(seq 300); do grep -q listening "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done
  base=$(sed -n 's/^listening on //p' "$tmp/serve.out")
  wrk -t 2 -c "$conns" -d "${secs}s" --latency -s "$tmp/load.lua" "$base" > "$tmp/wrk.txt"
  kill "$server"; wait "$server" 2>/dev/null || true; server=
  rps=$(sed -n 's/^Requests\/sec: *//p' "$tmp/wrk.txt")
  p50=$(awk '$1=="50%"{print $2}' "$tmp/wrk.txt"); p99=$(awk '$1=="99%"{print $2}' "$tmp/wrk.txt")
  bad=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$tmp/wrk.txt"); bad=${bad:-0}
  printf '%-44s %10s %10s %10s %9s %9s %7s\n' "${index%%\?*}" "$ups" "$recall" "$rps" "$p50" "$p99" "$bad"
done
