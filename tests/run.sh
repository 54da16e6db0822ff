#!/usr/bin/env bash
# run.sh: install, build and run every test: once with -Dwerror=true, then again with
# AddressSanitizer and UndefinedBehaviorSanitizer. This is the README's test command.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# .ci/run installs first and says so; run by hand, this script installs itself.
[ "${IDP_DEPS_INSTALLED:-}" = 1 ] || "$top/deploy/install-deps.sh"

run_suite() {
	local dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@"
	fi
	ninja -C "$dir"
	meson test -C "$dir" --print-errorlogs --num-processes 2
}

echo "== build and test (gcc, -Dwerror=true)"
run_suite build-test -Dwerror=true

echo "== build with clang (-Dwerror=true)"
if [ ! -f build-clang-test/build.ninja ]; then
	CC=clang meson setup build-clang-test -Dwerror=true
fi
ninja -C build-clang-test

echo "== build and test under AddressSanitizer and UndefinedBehaviorSanitizer"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false

echo "all test runs passed"
