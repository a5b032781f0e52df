#!/usr/bin/env bash
# Compares transform-server with the C baseline server of ../shared/bench, in one run:
# server pinned to core 0, load generator to core 1, each workload repeated REPS times,
# C and xform alternating. Prints one line per run with the server CPU time per request.
#
#   Benchmarks/compare.sh [REPS]        (default 3; needs ../shared/bench beside the checkout)
#
# Every run is bounded (5 s) and only targets 127.0.0.1; both servers are stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
bench=${XFORM_SHARED:-../shared}/bench
work=$(mktemp -d)
gcc -O2 -o "$work/loadgen" "$bench/loadgen.c"
gcc -O2 -o "$work/c_server" "$bench/c_server.c"
swift build -c release --product transform-server >/dev/null
bin=$(swift build -c release --show-bin-path)

taskset -c 0 "$work/c_server" 17101 >/dev/null 2>&1 & cpid=$!
taskset -c 0 "$bin/transform-server" --netstring-port 17102 --line-port 0 --idle-timeout 0 \
    --max-connections 20000 --max-request-bytes 2000000 --log-level warning >/dev/null 2>&1 & xpid=$!
trap 'kill $cpid $xpid 2>/dev/null; rm -rf "$work"' EXIT
sleep 1

run() {  # tag port pid extra-args...
    local tag=$1 port=$2 pid=$3; shift 3
    taskset -c 1 "$work/loadgen" -p "$port" -d 5 -P "$pid" "$@" 2>&1 | awk -v tag="$tag" '/RESULT/{
        for (i = 1; i <= NF; i++) { split($i, a, "="); v[a[1]] = a[2] }
        printf "%-14s rps=%-8s MB/s=%-7s server_cpu=%s%% us/req=%.2f p50=%sus p99=%sus other_cpu=%s%%\n",
            tag, v["rps"], v["mbps"], v["srv_cpu"], (v["rps"] > 0 ? v["srv_cpu"] * 10000 / v["rps"] : 0),
            v["p50_us"], v["p99_us"], v["other_cpu"] }'
}

for _ in $(seq "$reps"); do
    run "keepalive64 C" 17101 $cpid -c 64
    run "keepalive64 X" 17102 $xpid -c 64 -t '!cummingsify' -R '+'
done
for _ in $(seq "$reps"); do
    run "oneshot16 C" 17101 $cpid -c 16 -m oneshot -S 16
    run "oneshot16 X" 17102 $xpid -c 16 -m oneshot -S 16
done
for _ in $(seq "$reps"); do
    run "1MiB C" 17101 $cpid -c 4 -s 1048576
    run "1MiB X" 17102 $xpid -c 4 -s 1048576 -t '!cummingsify' -R '+'
done
