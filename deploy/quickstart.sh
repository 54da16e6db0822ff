#!/usr/bin/env bash
# quickstart.sh: install, build and run mockidp on http://localhost:8080 (Ctrl-C stops it).
# Usage: deploy/quickstart.sh [mockidp options]
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/deploy/install-deps.sh" --no-npm
[ -f build/build.ninja ] || meson setup build -Dwerror=true
ninja -C build
echo "Try: curl -s http://localhost:8080/.well-known/openid-configuration"
echo "     curl -s -d grant_type=client_credentials http://localhost:8080/token"
exec "$top/build/mockidp/mockidp" "$@"
