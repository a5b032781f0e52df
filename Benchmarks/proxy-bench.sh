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
source Benchmarks/proxy-common.sh
BASE=${BASE_PORT:-17100}

start() {  # start VAR CORE NETSTRING_PORT args... ; sets VAR to the pid
    local var=$1 core=$2 port=$3
    shift 3
    taskset -c "$core" "$BIN" --netstring-port "$port" --line-port $((port + 1)) --log-level warning "$@" \
        >/dev/null 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
        sleep 0.05
    done
    printf -v "$var" '%s' "$pid"
}

start upstream 1 $BASE
start direct 0 $((BASE + 2))
start proxy 0 $((BASE + 4)) --upstream 127.0.0.1:$BASE
start proxy_nocache 0 $((BASE + 6)) --upstream 127.0.0.1:$BASE --cache-bytes 0
sleep 0.5

cpu_ticks() {  # utime + stime of PID, in clock ticks
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

run() {  # run LABEL PORT PID loadgen-args...
    local label=$1 port=$2 pid=$3
    shift 3
    local out t0 t1
    t0=$(cpu_ticks "$pid")
    out=$(taskset -c 1 "$LOADGEN" -p "$port" -d "$DURATION" -w 0 -t '!cummingsify' -R '+' "$@" 2>&1)
    t1=$(cpu_ticks "$pid")
    local n
    n=$(echo "$out" | awk '/^requests:/ { print $2 }')
    echo "$label: $n requests, server CPU $(awk -v a="$t0" -v b="$t1" -v n="$n" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f us/request", (b - a) / hz * 1e6 / n }'), $(echo "$out" | grep -o 'p50 [0-9]*' | head -1) us"
}

mixrun() {  # mixrun LABEL PORT PID proxy-mix-args...
    local label=$1 port=$2 pid=$3
    shift 3
    echo "$label: $(taskset -c 1 "$MIX" -p "$port" -d "$DURATION" -P "$pid" "$@" 2>&1 |
        grep -E '^all|server CPU' | tr -s ' ' | tr '\n' ' ')"
}

for rep in $(seq "$REPS"); do
    echo "== repetition $rep"
    # 1. Cache hits (one payload, cached after the first request) against the direct server.
    run "direct            64 conns" $((BASE + 2)) "$direct" -c 64
    run "hit               64 conns" $((BASE + 4)) "$proxy" -c 64
    # 2. Misses: every payload fresh, cache off, against the direct server on the same traffic.
    mixrun "direct, fresh     64 conns" $((BASE + 2)) "$direct" -c 64 -m 100
    mixrun "miss, fresh       64 conns" $((BASE + 6)) "$proxy_nocache" -c 64 -m 100
    mixrun "direct, fresh      1 conn " $((BASE + 2)) "$direct" -c 1 -m 100
    mixrun "miss, fresh        1 conn " $((BASE + 6)) "$proxy_nocache" -c 1 -m 100
    # 3. 90% hits, slowcummingsify upstream.
    mixrun "90% hits, slowcummingsify, 16 conns" $((BASE + 4)) "$proxy" -c 16 -m 10 -t slowcummingsify
done
