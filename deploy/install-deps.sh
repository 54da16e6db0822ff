#!/usr/bin/env bash
# install-deps.sh: install what building, running and testing the project needs on a
# fresh Debian 12 machine (apt-get), and the npm packages the interop tests use.
# Usage: deploy/install-deps.sh [--no-npm]   (run as root, or with sudo available)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

pkgs=(
	build-essential clang meson ninja-build pkg-config
	libevent-dev libssl-dev libjansson-dev libpq-dev libsodium-dev
	libclang-rt-14-dev
	postgresql postgresql-contrib
	python3 python3-jwt python3-cryptography
	curl ca-certificates openssl wrk procps
	chromium
)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "install-deps: apt-get install ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
fi

if [ "${1:-}" != "--no-npm" ]; then
	# oauth2-mock-server (the reference mockidp is compared with), jose, openid-client,
	# playwright-core (drives Debian's chromium in the browser test; downloads nothing).
	(cd "$here/tests" && npm ci --no-audit --no-fund --loglevel=error)
fi
