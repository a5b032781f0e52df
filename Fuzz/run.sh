#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS each, one after another (the machine has two cores),
# starting from the seed corpus in Fuzz/corpus/<target>/ (new inputs go to .build-fuzz/corpus/,
# not into the repository). Prints executions per target and fails on any crash, leak or
# timeout (libFuzzer exits non-zero and leaves crash-*/leak-*/timeout-* files in .build-fuzz/).
# Usage: Fuzz/run.sh SECONDS [TARGET...]      e.g. Fuzz/run.sh 60 FuzzNetstring
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:?usage: Fuzz/run.sh SECONDS [TARGET...]}
shift
bash Fuzz/build.sh
OUT=.build-fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzNetstring FuzzLine FuzzEscaping FuzzCaseMapping)
status=0
summary=()
for t in "${targets[@]}"; do
    name=${t#Fuzz}
    seeds=Fuzz/corpus/${name,,}
    work=$OUT/corpus/$t
    mkdir -p "$work"
    echo "==> $t for ${SECONDS_EACH} s"
    log=$OUT/$t.log
    if "$OUT/$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$OUT/$t-" "$work" "$seeds" >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see $log)"
        status=1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    summary+=("$t: $runs executions, $result")
done
printf '%s\n' "${summary[@]}"
exit $status
