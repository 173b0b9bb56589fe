#!/usr/bin/env bash
# Runs the test suite with node's test runner. Files are listed explicitly
# (Node 20 does not expand globs). Pass file paths to run a subset.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ $# -gt 0 ]; then files=("$@"); else mapfile -t files < <(find test -name '*.test.ts' | sort); fi
[ ${#files[@]} -gt 0 ] || { echo "no test files found" >&2; exit 1; }
mkdir -p test-artifacts
exec node --import tsx --test --test-reporter=tap --test-concurrency=1 "${files[@]}"
