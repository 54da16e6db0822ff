#!/usr/bin/env bash
# setup.sh: install what bench/idp/run.sh needs besides the project's own build:
#   - nginx (Debian package; run.sh starts its own foreground instance on a loopback
#     port with a private config, the system service is not used),
#   - wrk and openssl (Debian packages; usually there already),
#   - oidc-provider (npm) into bench/idp/node_modules from package.json +
#     package-lock.json (`npm ci`, exact versions).
# Idempotent; run as root (apt). Usage: bench/idp/setup.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

need=()
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
command -v openssl >/dev/null || need+=(openssl)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if ((${#need[@]})); then
	echo "setup.sh: apt-get install ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# The Debian package starts a system nginx on port 80; the benchmark does not need
# it. Stop it only if the package has just been installed by us (we do not touch
# a system nginx someone else runs on purpose).
if [[ " ${need[*]-} " == *" nginx "* ]] && command -v systemctl >/dev/null &&
	systemctl is-active --quiet nginx 2>/dev/null; then
	systemctl stop nginx || true
fi

cd "$HERE"
if [[ -f package-lock.json ]]; then
	npm ci --no-audit --no-fund
else
	npm install --no-audit --no-fund
fi
node -e 'import("oidc-provider").then(m => console.log("oidc-provider ok:", typeof m.default))'
echo "setup.sh: nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), node $(node --version), oidc-provider $(node -p 'require("./node_modules/oidc-provider/package.json").version')" >&2
