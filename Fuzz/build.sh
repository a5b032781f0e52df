#!/usr/bin/env bash
# Builds the libFuzzer targets into .build-fuzz/ (swiftc -sanitize=fuzzer,address, optimised):
# the product modules they need as static libraries, then one executable per Fuzz/Fuzz*.swift.
# Usage: Fuzz/build.sh            (run.sh calls it)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.build-fuzz
mkdir -p "$OUT"
FLAGS=(-O -swift-version 6 -sanitize=fuzzer,address -parse-as-library -I "$OUT")

lib() {  # lib NAME [extra flags...]: Sources/NAME as a static library and module
    local name=$1; shift
    echo "==> $name"
    swiftc "${FLAGS[@]}" "$@" -module-name "$name" -emit-module -emit-module-path "$OUT/$name.swiftmodule" \
        -emit-library -static -o "$OUT/lib$name.a" $(find "Sources/$name" -name '*.swift' | sort)
}

lib XformCore
lib XformFraming
lib XformTransforms -enable-testing
lib XformMetrics
lib XformServer

for src in Fuzz/Fuzz*.swift; do
    name=$(basename "$src" .swift)
    echo "==> $name"
    swiftc "${FLAGS[@]}" -L "$OUT" -lXformServer -lXformMetrics -lXformTransforms -lXformFraming -lXformCore \
        "$src" -o "$OUT/$name"
done
