#!/usr/bin/env bash
# Runs the whole xform test suite: the one test command of the README and of .ci/run.
#
# 1. Installs what the tests need when it is missing (netcat-openbsd, Twisted, pytest; haproxy,
#    prometheus and curl for the fleet tests).
# 2. Builds everything, tests included, with warnings as errors.
# 3. Runs `swift test` (unit, in-memory and loopback tests).
# 4. Runs the integration tests, which spawn the built transform-server and xform binaries
#    and drive them with netcat, the Python clients and the book's Twisted client; then runs
#    them all again with XFORM_TEST_REACTORS=2 (every server with two event loops).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

install_prerequisites() {
    if ! command -v nc >/dev/null 2>&1 || ! nc -h 2>&1 | grep -q -- '-N'; then
        log "installing netcat-openbsd"
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq netcat-openbsd
        else
            sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq netcat-openbsd
        fi
    fi
    python3 -c 'import twisted' 2>/dev/null || { log "installing twisted"; python3 -m pip install -q twisted; }
    python3 -c 'import pytest' 2>/dev/null || { log "installing pytest"; python3 -m pip install -q pytest; }
}

# The fleet's real tools (issue 13): HAProxy, Prometheus (with promtool) and curl, Debian packages.
install_fleet_tools() {
    local missing=()
    command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
    { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || missing+=(prometheus)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    local sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

install_prerequisites
install_fleet_tools

log "building (warnings are errors)"
swift build --build-tests -Xswiftc -warnings-as-errors

log "swift test"
swift test --skip-build

log "integration tests"
XFORM_BIN_DIR=$(swift build --show-bin-path) python3 -m pytest -q -p no:cacheprovider Tests/Integration

# Issue 13: every integration test again with two event loops in each transform-server the
# tests start (conftest's server_options adds --reactors 2; a proxy keeps its one loop).
log "integration tests with --reactors 2"
XFORM_TEST_REACTORS=2 XFORM_BIN_DIR=$(swift build --show-bin-path) python3 -m pytest -q -p no:cacheprovider Tests/Integration

# Issue 11: the embedding example (a server with its own transform through TransformServerKit),
# built as a separate package that depends on xform by path, then smoke-tested.
log "example: Examples/PirateServer"
bash Tests/example-smoke.sh "$(swift build --show-bin-path)/xform"
