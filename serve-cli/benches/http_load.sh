#!/usr/bin/env bash
# Load test of `twotower serve` on loopback: user recommendations (k=10) for random known users, with
# an index rebuild + hot swap in the middle of the run; reports throughput, p50/p99 and failed requests.
#
#   serve-cli/benches/http_load.sh MODEL_DIR INDEX_DIR [SECONDS] [CONNECTIONS]
#
# Needs wrk (Debian: apt-get install wrk). Bounded in time, loopback only. The index directory is
# rebuilt in place (a new version; the old one stays until `index gc`).
set -euo pipefail
model=${1:?model dir}; index=${2:?index dir}; secs=${3:-20}; conns=${4:-32}
bin=${TWOTOWER:-target/release/twotower}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
tmp=$(mktemp -d); server=; trap '[ -n "$server" ] && kill $server 2>/dev/null; rm -rf "$tmp"' EXIT

# Known users, for the Lua script to draw from.
"$bin" recommend --quiet --all --k 1 --model "$model" --index "$index" --out "$tmp/users.jsonl" 2>/dev/null
python3 -c "
import json,sys
users=sorted({json.loads(l)['user'] for l in open('$tmp/users.jsonl')})
print('users = {' + ','.join(json.dumps(u) for u in users) + '}')
" > "$tmp/users.lua"
cat > "$tmp/load.lua" <<LUA
dofile("$tmp/users.lua")
math.randomseed(7)
request = function()
  local u = users[math.random(#users)]
  return wrk.format("GET", "/v1/users/" .. u .. "/recommendations?k=10")
end
LUA

"$bin" serve --quiet --model "$model" --index "$index" --addr 127.0.0.1:0 --watch-ms 100 > "$tmp/serve.out" 2> "$tmp/serve.err" &
server=$!
for _ in $(seq 100); do grep -q listening "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's/^listening on //p' "$tmp/serve.out")
v0=$(curl -s "$base/metrics" | sed -n 's/^twotower_index_version //p')

# Rebuild in the middle of the run, at lower CPU priority as a background rebuild should run (it still
# shares the 2 cores with the server and wrk).
( sleep $((secs / 3)); nice -n 10 "$bin" index rebuild --quiet --model "$model" --index "$index" > "$tmp/rebuild.log" 2>&1 ) &
rebuild=$!
wrk -t 1 -c "$conns" -d "${secs}s" --latency -s "$tmp/load.lua" "$base" | tee "$tmp/wrk.txt"
wait $rebuild
sleep 0.5
v1=$(curl -s "$base/metrics" | sed -n 's/^twotower_index_version //p')
non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: *//p' "$tmp/wrk.txt"); non2xx=${non2xx:-0}
errors=$(sed -n 's/.*Socket errors: *//p' "$tmp/wrk.txt"); errors=${errors:-none}
server_5xx=$(curl -s "$base/metrics" | awk '/^twotower_requests_total/ && /status="5/ {s+=$2} END {print s+0}')
echo
echo "index version during the run: $v0 -> $v1 (rebuild + hot swap)"
echo "failed requests: non-2xx=$non2xx, socket errors: $errors, server-side 5xx=$server_5xx"
kill -TERM $server; wait $server || true
