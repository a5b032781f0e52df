#!/usr/bin/env bash
# Builds Examples/PirateServer (a package that depends on xform by path and adds a `pirate`
# transform through TransformServerKit) and smoke-tests it: start it on free ports, one request
# through the xform binary, check the reply, stop it with SIGTERM and check it exits 0.
#
# Usage: Tests/example-smoke.sh <path to the xform binary>
set -euo pipefail
cd "$(dirname "$0")/.."
XFORM=${1:?usage: example-smoke.sh <xform binary>}

# An incremental build of a path dependency can miss source files added to xform since the last
# build (SwiftPM keeps the dependency's file list): on failure, build once more from scratch.
if ! swift build --package-path Examples/PirateServer -Xswiftc -warnings-as-errors; then
    echo "example build failed; retrying from a clean build directory" >&2
    rm -rf Examples/PirateServer/.build
    swift build --package-path Examples/PirateServer -Xswiftc -warnings-as-errors
fi
SERVER="$(swift build --package-path Examples/PirateServer --show-bin-path)/pirate-server"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$SERVER" --netstring-port 0 --line-port 0 2>"$log" &
pid=$!
stop() { kill -TERM "$pid" 2>/dev/null || true; }
trap 'stop; rm -f "$log"' EXIT

port=""
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*listening for netstring requests on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "pirate-server exited early" >&2; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { cat "$log"; echo "pirate-server did not report its port" >&2; exit 1; }

reply=$(printf 'hello my friend' | "$XFORM" -p "$port" --deadline 10s pirate)
[ "$reply" = "Arr! hello me friend" ] || { echo "unexpected reply: '$reply'" >&2; exit 1; }
# The built-ins are still there.
[ "$(printf 'abc' | "$XFORM" -p "$port" upper)" = "ABC" ] || { echo "upper failed" >&2; exit 1; }

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
trap 'rm -f "$log"' EXIT
[ "$status" = 0 ] || { cat "$log"; echo "pirate-server exited with $status after SIGTERM" >&2; exit 1; }
echo "example ok: pirate-server on port $port answered '$reply'"
