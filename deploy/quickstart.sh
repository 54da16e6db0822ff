#!/usr/bin/env bash
# quickstart.sh: install, build and run idp on http://127.0.0.1:8080 against a throwaway
# PostgreSQL, with a demo service client, a demo user and a demo web app on port 8081 to
# sign in with; Ctrl-C stops everything and removes the database.
# Usage: deploy/quickstart.sh            (as root, or with sudo available)
# Environment: IDP_PORT (8080), IDP_DEMO_DIR (a new /tmp/idp-demo-* directory).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/deploy/install-deps.sh" --no-npm
[ -f build/build.ninja ] || meson setup build -Dwerror=true
ninja -C build

port=${IDP_PORT:-8080}
demo=${IDP_DEMO_DIR:-$(mktemp -d /tmp/idp-demo-XXXXXX)}
mkdir -p "$demo"
chmod 755 "$demo"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pg() {
	# PostgreSQL refuses to run as root.
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" -eq 0 ] && chown postgres: "$demo"
pguser=$([ "$(id -u)" -eq 0 ] && echo postgres || id -un)
pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cleanup() {
	[ -n "${rp_pid:-}" ] && kill "$rp_pid" 2>/dev/null
	[ -n "${idp_pid:-}" ] && kill "$idp_pid" 2>/dev/null && wait "$idp_pid" 2>/dev/null
	pg "$pgbin/pg_ctl" -D "$demo/pg" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$demo"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== PostgreSQL in $demo (port $pgport, Unix socket only)"
pg "$pgbin/initdb" -D "$demo/pg" -A trust -U "$pguser" -E UTF8 >/dev/null
pg "$pgbin/pg_ctl" -D "$demo/pg" -l "$demo/pg.log" -w \
	-o "-c listen_addresses= -c unix_socket_directories=$demo -p $pgport" start >/dev/null
pg "$pgbin/createdb" -h "$demo" -p "$pgport" -U "$pguser" idp
db="host=$demo port=$pgport dbname=idp user=$pguser"

ctl() { "$top/build/idp/idpctl" -d "$db" "$@"; }
ctl migrate
"$top/build/idp/idpctl" kek generate "$demo/kek"
client=$(ctl client add --name demo --scope "read write" --audience https://api.example --json)
cid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$client")
csecret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$client")
# A person and a browser client, for the sign-in page.
rpport=$((port + 1))
echo "demo-password" | ctl user add --username demo --email demo@example.com \
	--name "Demo User" --role admin --password-stdin >/dev/null
web=$(ctl client add --name "Demo App" --grant authorization_code --grant refresh_token \
	--redirect-uri "http://127.0.0.1:$rpport/callback" --first-party --json)
wid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$web")
wsecret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$web")

cat >"$demo/idp.conf" <<CONF
# A demo configuration: see README.md for every key.
issuer = http://127.0.0.1:$port
listen = 127.0.0.1:$port
database = "$db"
key_encryption_key_file = $demo/kek
signing_alg = RS256
CONF

cat <<MSG

== idp is starting on http://127.0.0.1:$port (Ctrl-C stops it and removes the demo database)
Sign in with a browser: open http://127.0.0.1:$rpport/ and click "Sign in with idp";
idp's login page asks for username "demo", password "demo-password", then the demo
app shows the ID token's claims and /userinfo.

Service client: $cid  secret: $csecret  (shown here once; only its Argon2id hash is stored)

  curl -s http://127.0.0.1:$port/.well-known/openid-configuration
  curl -s http://127.0.0.1:$port/jwks
  curl -s -u '$cid:$csecret' -d grant_type=client_credentials -d scope=read http://127.0.0.1:$port/token
  curl -s http://127.0.0.1:$port/metrics

MSG
"$top/build/idp/idp" -c "$demo/idp.conf" &
idp_pid=$!
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
	kill -0 "$idp_pid" 2>/dev/null || exit 1
	sleep 0.1
done
python3 "$top/deploy/demo_rp.py" "http://127.0.0.1:$port" "$wid" "$wsecret" "$rpport" &
rp_pid=$!
wait "$idp_pid"
