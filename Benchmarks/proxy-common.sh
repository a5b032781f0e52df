# Sourced by proxy-bench.sh and proxy-callgrind.sh (from the package root): the binaries they
# drive, the load generators (built when missing), and a cleanup that stops what they started.
BIN=${BIN:-.build/release/transform-server}
LOADGEN=${LOADGEN:-/tmp/proxy-loadgen}
MIX=${MIX:-/tmp/proxy-mix}
BENCH_SRC=${BENCH_SRC:-../shared/bench}
[ -x "$LOADGEN" ] || gcc -O2 -o "$LOADGEN" "$BENCH_SRC/loadgen.c"
[ -x "$MIX" ] || gcc -O2 -o "$MIX" Benchmarks/proxy-mix.c

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
