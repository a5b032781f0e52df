#!/usr/bin/env bash
# User-space instructions per request of the transform proxy (or a direct server) under
# callgrind: the repeatable figure on a shared, noisy machine (issue 12's performance work).
#
# Usage: Benchmarks/proxy-callgrind.sh MODE [SECONDS] [CONNS]     (release build first)
#   MODE direct: a transform server answering `!cummingsify` (64 B) itself;
#        hit:    a proxy (--upstream) answering the same request from its cache;
#        miss:   a proxy with --cache-bytes 0 and a fresh payload per request (proxy-mix -m 100).
# The server under test runs under `valgrind --tool=callgrind --dump-instr=no`; after a warm-up
# (valgrind translates each new code path once, seconds per path) the counters are zeroed, an
# idle window and then a loaded window of SECONDS are dumped, and the script prints
# (loaded - idle) / requests. Needs LOADGEN and MIX as proxy-bench.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:?usage: proxy-callgrind.sh direct|hit|miss [SECONDS] [CONNS]}
D=${2:-5}
CONNS=${3:-1}
source Benchmarks/proxy-common.sh
BASE=${BASE_PORT:-17200}
OUT=$(mktemp -d /tmp/proxy-callgrind.XXXXXX)

args=()
if [ "$MODE" != direct ]; then
    "$BIN" --netstring-port "$BASE" --line-port $((BASE + 1)) --log-level warning >/dev/null 2>&1 &
    pids+=($!)
    args=(--upstream "127.0.0.1:$BASE")
    [ "$MODE" = miss ] && args+=(--cache-bytes 0)
fi
PORT=$((BASE + 2))
valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$OUT/cg" \
    "$BIN" --netstring-port "$PORT" --line-port $((PORT + 1)) --log-level warning "${args[@]}" \
    >/dev/null 2>"$OUT/valgrind.log" &
server=$!
pids+=("$server")
for _ in $(seq 1200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
    sleep 0.1
done

load() {  # load SECONDS: prints the number of requests answered
    case $MODE in
        direct | hit) "$LOADGEN" -p "$PORT" -c "$CONNS" -d "$1" -w 0 -t '!cummingsify' -R '+' 2>&1 |
            awk '/^requests:/ { print $2 }' ;;
        miss) "$MIX" -p "$PORT" -c "$CONNS" -d "$1" -w 0 -m 100 2>&1 | awk '/^all/ { print $2 }' ;;
    esac
}

load 8 >/dev/null  # warm-up: every path translated once
load 3 >/dev/null
callgrind_control -z "$server" >/dev/null 2>&1
sleep "$D"
callgrind_control -d idle "$server" >/dev/null 2>&1
callgrind_control -z "$server" >/dev/null 2>&1
n=$(load "$D")
callgrind_control -d load "$server" >/dev/null 2>&1
summary() { awk '/^summary:/ { print $2 }' "$1"; }
idle=$(summary "$OUT/cg.1")
loaded=$(summary "$OUT/cg.2")
echo "$MODE, $CONNS conn(s): $n requests, $(((loaded - idle) / n)) instructions per request (idle window $idle)"
echo "profile of the loaded window: callgrind_annotate $OUT/cg.2"
