#!/usr/bin/env bash
# Runs the whole xform test suite: the one test command of the README and of .ci/run.
#
# 1. Installs what the tests need when it is missing (netcat-openbsd, Twisted, pytest).
# 2. Builds everything, tests included, with warnings as errors.
# 3. Runs `swift test` (unit, in-memory and loopback tests).
# 4. Runs the integration tests, which spawn the built transform-server and xform binaries
#    and drive them with netcat, the Python clients and the book's Twisted client.
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

install_prerequisites

log "building (warnings are errors)"
swift build --build-tests -Xswiftc -warnings-as-errors

log "swift test"
swift test --skip-build

log "integration tests"
XFORM_BIN_DIR=$(swift build --show-bin-path) python3 -m pytest -q -p no:cacheprovider Tests/Integration

# Issue 11: the embedding example (a server with its own transform through TransformServerKit),
# built as a separate package that depends on xform by path, then smoke-tested.
log "example: Examples/PirateServer"
bash Tests/example-smoke.sh "$(swift build --show-bin-path)/xform"
