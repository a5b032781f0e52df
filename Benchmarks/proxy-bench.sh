#!/usr/bin/env bash
# The transform proxy's three performance targets (issue 12), in one run, against a direct server
# measured in the same run:
#   1. a cache hit costs <= 1.2x the CPU per request of the same request answered directly
#      (keep-alive, 64 connections);
#   2. a miss adds <= 1 request's worth of CPU on the proxy (cache disabled, against a direct
#      server's CPU per request);
#   3. with 90% of requests hitting and slowcummingsify upstream, p50 latency <= 1 ms.
# Server (direct or proxy) on core 0; load generator and the proxy's upstream on core 1.
#
# Usage: Benchmarks/proxy-bench.sh [REPS] [DURATION]     (release build: swift build -c release)
# Needs LOADGEN (default /tmp/proxy-loadgen, from ../shared/bench/loadgen.c) and MIX (default
# /tmp/proxy-mix, from Benchmarks/proxy-mix.c); builds them when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-3}
DURATION=${2:-5}
BIN=${BIN:-.build/release/transform-server}
LOADGEN=${LOADGEN:-/tmp/proxy-loadgen}
MIX=${MIX:-/tmp/proxy-mix}
BENCH_SRC=${BENCH_SRC:-../shared/bench}
[ -x "$LOADGEN" ] || gcc -O2 -o "$LOADGEN" "$BENCH_SRC/loadgen.c"
[ -x "$MIX" ] || gcc -O2 -o "$MIX" Benchmarks/proxy-mix.c
BASE=${BASE_PORT:-17100}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

start() {  # start CORE NETSTRING_PORT args... ; prints the pid
    local core=$1 port=$2
    shift 2
    taskset -c "$core" "$BIN" --netstring-port "$port" --line-port $((port + 1)) --log-level warning "$@" \
        >/dev/null 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
        sleep 0.05
    done
    echo "$pid"
}

cpu_per_req() {  # loadgen output -> "µs/req req/s p50"
    awk '/requests\/s/ { for (i = 1; i <= NF; i++) if ($i ~ /requests\/s/) rps = $(i-1) }
         /server CPU/ { for (i = 1; i <= NF; i++) if ($i ~ /us\/req|µs\/req/) cpu = $(i-1) }
         END { print cpu, rps }'
}

upstream=$(start 1 $BASE)
direct=$(start 0 $((BASE + 2)))
proxy=$(start 0 $((BASE + 4)) --upstream 127.0.0.1:$BASE)
proxy_nocache=$(start 0 $((BASE + 6)) --upstream 127.0.0.1:$BASE --cache-bytes 0)
sleep 0.5

run() {  # run LABEL PORT PID loadgen-args...
    local label=$1 port=$2 pid=$3
    shift 3
    local out
    out=$(taskset -c 1 "$LOADGEN" -p "$port" -d "$DURATION" -t '!cummingsify' -R '+' -P "$pid" "$@" 2>&1)
    echo "$label: $(echo "$out" | grep -E 'requests/s|server CPU|p50' | tr '\n' ' ')"
}

for rep in $(seq "$REPS"); do
    echo "== repetition $rep"
    run "direct   64 conns" $((BASE + 2)) "$direct" -c 64
    run "hit      64 conns" $((BASE + 4)) "$proxy" -c 64
    run "direct    1 conn " $((BASE + 2)) "$direct" -c 1
    run "miss      1 conn " $((BASE + 6)) "$proxy_nocache" -c 1
    run "miss     64 conns" $((BASE + 6)) "$proxy_nocache" -c 64
    echo "mix 90% hits, slowcummingsify, 16 conns:"
    taskset -c 1 "$MIX" -p $((BASE + 4)) -c 16 -d "$DURATION" -m 10 -t slowcummingsify -P "$proxy"
done
printf 'stats\n' | nc -N 127.0.0.1 $((BASE + 7)) | grep -E 'single_flight_joins|cache_misses|upstream_0_latency' || true
