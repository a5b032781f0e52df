#!/usr/bin/env bash
# Builds and tests xform under AddressSanitizer and ThreadSanitizer (issue 10). Slow (two extra
# full builds), so not part of .ci/run; run it before a release or after touching threads,
# locks or unsafe pointers.
#
# For each sanitizer (address, thread; or the ones named as arguments):
#   1. builds everything, tests included, into its own scratch path (.build-asan, .build-tsan);
#   2. runs `swift test` under the sanitizer;
#   3. starts that build's transform-server and sends it a bounded random-request pass
#      (Tests/sanitizer_fuzz.py: 3,000 requests, at most 120 s), then stops it with SIGTERM;
# and fails if any step fails or any sanitizer report appears. Logs: .build-<san>/sanitizer-*.log
# Usage: Tests/sanitizers.sh [address] [thread]
set -uo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }
REPORT='ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|runtime error:'
# Leak checking is on for the server (a real process, checked when it exits after SIGTERM) but
# off for `swift test`: the in-memory tests leave connections open whose protocol and transport
# keep each other alive (and XCTest's runner leaks its own objects), which LeakSanitizer lists
# by the thousand without saying anything about the server. SERVER_ASAN_OPTIONS overrides.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1}
SERVER_ASAN_OPTIONS=${SERVER_ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
# Timing ratios mean little under instrumentation: tests that measure them skip that check.
export XFORM_SANITIZER=1
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1}
failed=()

run_one() {
    local san=$1 scratch
    case $san in
        address) scratch=.build-asan ;;
        thread) scratch=.build-tsan ;;
        *) echo "unknown sanitizer $san" >&2; return 1 ;;
    esac
    mkdir -p "$scratch"
    log "[$san] building into $scratch"
    if ! swift build --build-tests --sanitize="$san" --scratch-path "$scratch" >"$scratch/sanitizer-build.log" 2>&1; then
        tail -30 "$scratch/sanitizer-build.log"
        failed+=("$san: build")
        return
    fi

    log "[$san] swift test"
    swift test --skip-build --sanitize="$san" --scratch-path "$scratch" >"$scratch/sanitizer-test.log" 2>&1
    local status=$?
    if [ $status -ne 0 ] || grep -Eq "$REPORT" "$scratch/sanitizer-test.log"; then
        grep -E -A20 "$REPORT" "$scratch/sanitizer-test.log" | head -60
        grep -E "✘" "$scratch/sanitizer-test.log" | head -20
        failed+=("$san: swift test (status $status)")
    fi

    log "[$san] random requests against the running server"
    local bin server_log="$scratch/sanitizer-server.log"
    bin=$(swift build --sanitize="$san" --scratch-path "$scratch" --show-bin-path)
    ASAN_OPTIONS=$SERVER_ASAN_OPTIONS "$bin/transform-server" --netstring-port 0 --line-port 0 \
        --interface 127.0.0.1 >"$server_log" 2>&1 &
    local pid=$!
    local ports=""
    for _ in $(seq 300); do
        ports=$(grep -Eo 'listening for (netstring|line) requests on [^ ]+:[0-9]+' "$server_log" | grep -Eo '[0-9]+$' | tr '\n' ' ')
        [ "$(echo $ports | wc -w)" = 2 ] && break
        sleep 0.1
    done
    if [ "$(echo $ports | wc -w)" != 2 ]; then
        failed+=("$san: server did not start")
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        cat "$server_log" | head -30
        return
    fi
    # shellcheck disable=SC2086
    python3 Tests/sanitizer_fuzz.py $ports 3000 120 || failed+=("$san: server stopped answering")
    kill -TERM "$pid"
    wait "$pid"
    status=$?
    if [ $status -ne 0 ] || grep -Eq "$REPORT" "$server_log"; then
        grep -E -A30 "$REPORT" "$server_log" | head -60
        failed+=("$san: server (exit $status)")
    fi
}

sanitizers=("$@")
[ ${#sanitizers[@]} -gt 0 ] || sanitizers=(address thread)
for san in "${sanitizers[@]}"; do run_one "$san"; done

if [ ${#failed[@]} -gt 0 ]; then
    log "sanitizer failures:"
    printf '  %s\n' "${failed[@]}"
    exit 1
fi
log "sanitizers clean: ${sanitizers[*]}"
