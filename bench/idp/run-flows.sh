#!/usr/bin/env bash
# run-flows.sh: idp's token flows for people under load (issue 4's "Performance"):
#   1. POST /introspect of a valid JWT access token (a user's, from a real code flow),
#      client_secret_basic of a confidential client:
#        wrk -t$THREADS -c$CONNS -d$DURATION --latency -s bench/idp/post.lua;
#      the same against oidc-provider (bench/idp/oidc-provider.mjs, OP_TOKENS=opaque:
#      features.introspection, an opaque client_credentials access token, since
#      oidc-provider only introspects tokens it keeps in its adapter);
#   2. refresh-token grants with PostgreSQL in the loop: $CHAINS closed-loop chains
#      (bench/idp/flows.py refresh), each POSTing /token grant_type=refresh_token with
#      the refresh token of its own previous response (rotation), for $REFRESH_S s;
#      the same against oidc-provider (bench/idp/oidc-provider-flows.mjs: in memory,
#      refresh tokens rotated on every use, RS256 JWT access token and ID token each);
#   3. complete login-to-token flows: GET /authorize (PKCE S256), POST the login form
#      (hidden fields incl. the CSRF token, cookie jar), the redirect's code, POST /token
#      authorization_code; $FLOWS concurrent flows for $LOGIN_S s over $USERS distinct
#      users (right passwords only, so the failure throttle never applies); passwords
#      hashed by `idpctl user add` with Argon2id at libsodium's interactive cost
#      (crypto_pwhash OPSLIMIT_INTERACTIVE = 2 passes, MEMLIMIT_INTERACTIVE = 64 MiB);
#      the same against oidc-provider-flows.mjs (its own login form, the same users,
#      scrypt N=2^14 r=13 p=1 = 26 MiB, which takes as long as that Argon2id here:
#      node 20 has no Argon2), then the cost of one verification with each KDF
#      ($KDF_N in a row) so that the two can be weighed.
# idp runs with $WORKERS workers on a throwaway PostgreSQL cluster (tests/lib/
# pgcluster.py: Unix socket, fsync off). CPU = utime+stime of the idp parent's whole
# process tree and of the postmaster's (with its backends) from /proc, per ok response.
# One warm-up run for introspection and refresh, then one measured run of each case.
#
# Usage:  bench/idp/setup.sh (once), ninja -C build, bench/idp/run-flows.sh  (~2 min)
# Environment (defaults in brackets): DURATION [10s] WARMUP [3s] CONNS [32] THREADS [1]
#   REFRESH_S [10] CHAINS [16] LOGIN_S [15] FLOWS [8] USERS [50] WORKERS [2] KDF_N [10]
#   ARGON2_THREADS [idp's default]
#   IDP_LOG_LEVEL [warn] IDP IDPCTL PYTHON [/usr/bin/python3] OUT_DIR [bench/out]
# Loopback only; every server started (idp parent, node, the postmaster) is stopped by
# its PID, also on error, ^C or TERM. Markdown to stdout and
# bench/out/idp-flows-<stamp>.md, raw data in bench/out/idp-flows-<stamp>/.
#
# B_*, D_*, L_*, R_*, C_* are set with printf -v (kv) and read with ${!name}:
# shellcheck disable=SC2154
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
REFRESH_S=${REFRESH_S:-10}
CHAINS=${CHAINS:-16}
LOGIN_S=${LOGIN_S:-15}
FLOWS=${FLOWS:-8}
USERS=${USERS:-50}
WORKERS=${WORKERS:-2}
KDF_N=${KDF_N:-10}
IDP_LOG_LEVEL=${IDP_LOG_LEVEL:-warn}
IDP=${IDP:-$ROOT/build/idp/idp}
IDPCTL=${IDPCTL:-$ROOT/build/idp/idpctl}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT_DIR=${OUT_DIR:-$ROOT/bench/out}
LIB="$HERE/idpbench.py"
FLOWPY="$HERE/flows.py"
LUA="$HERE/post.lua"
REDIRECT="http://127.0.0.1:9/cb"

die() { echo "run-flows.sh: $*" >&2; exit 1; }
say() { echo "run-flows.sh: $*" >&2; }
[[ -x $IDP && -x $IDPCTL ]] || die "no idp/idpctl in build/idp (ninja -C build?)"
for t in node wrk "$PYTHON"; do command -v "$t" >/dev/null || die "$t not found"; done
HAVE_OP=0
[[ -d $HERE/node_modules/oidc-provider ]] && HAVE_OP=1

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$OUT_DIR/idp-flows-$STAMP"
MD="$OUT_DIR/idp-flows-$STAMP.md"
mkdir -p "$RAW"
WORK=$(mktemp -d /tmp/idp-flows.XXXXXX)

PIDS=()
PG_PID='' PG_DIR=''
cleanup() {
	local i p
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		p=${PIDS[i]}
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	PIDS=()
	if [[ -n $PG_PID ]]; then
		kill -INT "$PG_PID" 2>/dev/null || true
		"$PYTHON" "$LIB" pg-wait-gone "$PG_PID" "$PG_DIR" || true
		PG_PID=''
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bg_wait CMD...: run CMD in the background and wait, so that TERM is handled at once
bg_wait() {
	local p rc=0
	"$@" &
	p=$!
	PIDS+=("$p")
	wait "$p" || rc=$?
	unset 'PIDS[${#PIDS[@]}-1]'
	return "$rc"
}
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
free_port() { "$PYTHON" "$LIB" port; }
ready() { # URL PID LOG
	"$PYTHON" "$LIB" ready "$1" "$2" 60 || { sed 's/^/  | /' "$3" >&2; die "no answer from $1"; }
}
jget() { "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
b64() { printf '%s' "$1" | base64 -w0; }
kv() { # LINE PREFIX: set PREFIX<key> for each k=v
	local x
	for x in $1; do printf -v "$2${x%%=*}" '%s' "${x#*=}"; done
}

cp "$IDP" "$WORK/idp"
cp "$IDPCTL" "$WORK/idpctl"
IDP_SRC=$IDP IDP=$WORK/idp IDPCTL=$WORK/idpctl
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git -C "$ROOT" status --porcelain -- idp common sql 2>/dev/null | head -1) ]] ||
	REV="$REV (idp/, common/ or sql/ have uncommitted changes)"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_START=$(ps -eo pcpu=,comm= --sort=-pcpu | head -4 | awk '{printf "%s %s%%; ", $2, $1}')

# ---------------------------------------------------------------- PostgreSQL + idp
say "PostgreSQL: throwaway cluster"
eval "$("$PYTHON" "$LIB" pg-start idp_flows)" || die "could not start PostgreSQL"
[[ -n $PG_PID ]] || die "pg-start printed no PG_PID"
DB=$PG_CONNINFO_1
PG_VER=$("$PG_BINDIR/postgres" --version | awk '{print $3}')
"$IDPCTL" kek generate "$WORK/kek" >/dev/null
"$IDPCTL" -d "$DB" migrate >"$RAW/migrate.log" 2>&1 || { cat "$RAW/migrate.log" >&2; die "migrate failed"; }
RS_JSON=$("$IDPCTL" -d "$DB" client add --json --name rs --grant client_credentials) || die "client add rs"
WEB_JSON=$("$IDPCTL" -d "$DB" client add --json --name web --first-party --grant authorization_code \
	--grant refresh_token --redirect-uri "$REDIRECT" --scope "openid profile email") || die "client add web"
RS_ID=$(jget client_id <<<"$RS_JSON") RS_SECRET=$(jget client_secret <<<"$RS_JSON")
WEB_ID=$(jget client_id <<<"$WEB_JSON") WEB_SECRET=$(jget client_secret <<<"$WEB_JSON")

say "creating $USERS users (idpctl user add --password-stdin: Argon2id, interactive cost)"
: >"$WORK/users"
T0=$(date +%s.%N)
for ((i = 1; i <= USERS; i++)); do
	pw=$(openssl rand -hex 12)
	printf '%s\n' "$pw" | "$IDPCTL" -d "$DB" user add --username "u$i" --password-stdin >/dev/null ||
		die "user add u$i failed"
	printf 'u%d %s\n' "$i" "$pw" >>"$WORK/users"
done
USERADD_S=$(calc "$(date +%s.%N) - $T0" 1)
HASH=$("$PYTHON" - "$DB" "$PG_BINDIR" <<'PY'
import subprocess, sys, shlex
ci = dict(kv.split("=", 1) for kv in sys.argv[1].split())
out = subprocess.run([sys.argv[2] + "/psql", "-h", ci["host"], "-p", ci["port"], "-U", ci["user"],
                      "-d", ci["dbname"], "-At", "-c",
                      "SELECT substring(password_hash from '^\\$argon2id\\$v=19\\$[^$]*') FROM users LIMIT 1"],
                     capture_output=True, text=True)
print(out.stdout.strip() or "?" + out.stderr.strip()[:100])
PY
)

PORT=$(free_port)
cat >"$WORK/idp.conf" <<EOF2
issuer = "http://127.0.0.1:$PORT"
listen = "127.0.0.1:$PORT"
database = "$DB"
key_encryption_key_file = "$WORK/kek"
workers = $WORKERS
log_level = $IDP_LOG_LEVEL
${ARGON2_THREADS:+argon2_threads = $ARGON2_THREADS}
EOF2
if [[ -n ${ARGON2_THREADS-} ]]; then
	ARGON2_DESC="$ARGON2_THREADS per worker"
else # idp's default (idp.c resolve_argon2_threads): the cores shared among the workers
	ARGON2_DESC="$(($(nproc) / WORKERS > 0 ? $(nproc) / WORKERS : 1)) per worker (default)"
fi
cp "$WORK/idp.conf" "$RAW/idp.conf"
"$IDP" -c "$WORK/idp.conf" >"$RAW/idp.log" 2>&1 &
IDP_PID=$!
PIDS+=("$IDP_PID")
BASE="http://127.0.0.1:$PORT"
ready "$BASE/readyz" "$IDP_PID" "$RAW/idp.log"

# ---------------------------------------------------------------- oidc-provider
if ((HAVE_OP)); then
	OP_PORT=$(free_port)
	OP_SECRET=$(openssl rand -hex 32)
	OP_CLIENT_ID=bench OP_CLIENT_SECRET=$OP_SECRET OP_TOKENS=opaque NODE_ENV=production \
		node "$HERE/oidc-provider.mjs" "$OP_PORT" >"$RAW/oidc-provider.log" 2>&1 &
	OP_PID=$!
	PIDS+=("$OP_PID")
	ready "http://127.0.0.1:$OP_PORT/jwks" "$OP_PID" "$RAW/oidc-provider.log"
	OP_VER=$(node -p 'require(process.argv[1]).version' "$HERE/node_modules/oidc-provider/package.json")
	OPF_PORT=$(free_port)
	OPF_BASE="http://127.0.0.1:$OPF_PORT"
	OPF_SECRET=$(openssl rand -hex 32)
	OP_WEB_ID=web OP_WEB_SECRET=$OPF_SECRET OP_REDIRECT=$REDIRECT OP_RS_ID=rs \
		OP_RS_SECRET=$(openssl rand -hex 32) NODE_ENV=production \
		node "$HERE/oidc-provider-flows.mjs" "$OPF_PORT" "$WORK/users" >"$RAW/oidc-provider-flows.log" 2>&1 &
	OPF_PID=$!
	PIDS+=("$OPF_PID")
	ready "$OPF_BASE/jwks" "$OPF_PID" "$RAW/oidc-provider-flows.log"
fi

# post_once URL BASIC BODY -> response body
post_once() {
	"$PYTHON" - "$1" "$2" "$3" <<'PY'
import http.client, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
assert u.hostname == "127.0.0.1"
c = http.client.HTTPConnection("127.0.0.1", u.port, timeout=10)
c.request("POST", u.path, sys.argv[3], {"Authorization": "Basic " + sys.argv[2],
          "Content-Type": "application/x-www-form-urlencoded"})
r = c.getresponse()
sys.stdout.write(r.read().decode())
sys.stderr.write("HTTP %d\n" % r.status)
PY
}

# ---------------------------------------------------------------- tokens
say "one code flow for a user's access token"
# shellcheck disable=SC2046 # "username password": two arguments
TOK_JSON=$("$PYTHON" "$FLOWPY" code "$BASE" "$WEB_ID" "$WEB_SECRET" "$REDIRECT" $(head -1 "$WORK/users")) ||
	die "code flow failed"
AT=$(jget access_token <<<"$TOK_JSON")
IDP_BODY="token=$AT"
IDP_BASIC=$(b64 "$RS_ID:$RS_SECRET")
post_once "$BASE/introspect" "$IDP_BASIC" "$IDP_BODY" >"$RAW/introspect-idp.json" 2>"$RAW/introspect-idp.status"
grep -q '"active": *true' "$RAW/introspect-idp.json" || die "idp: the token does not introspect active: $(cat "$RAW/introspect-idp.json")"
IDP_MARK=$(grep -o '"active": *true' "$RAW/introspect-idp.json" | head -1)
if ((HAVE_OP)); then
	OP_BASIC=$(b64 "bench:$OP_SECRET")
	OP_AT=$(post_once "http://127.0.0.1:$OP_PORT/token" "$OP_BASIC" "grant_type=client_credentials&scope=a" 2>/dev/null | jget access_token) ||
		die "oidc-provider: no client_credentials token"
	OP_BODY="token=$OP_AT"
	post_once "http://127.0.0.1:$OP_PORT/token/introspection" "$OP_BASIC" "$OP_BODY" >"$RAW/introspect-op.json" 2>"$RAW/introspect-op.status"
	grep -q '"active": *true' "$RAW/introspect-op.json" || die "oidc-provider: not active: $(cat "$RAW/introspect-op.json")"
	OP_MARK=$(grep -o '"active": *true' "$RAW/introspect-op.json" | head -1)
fi

# ---------------------------------------------------------------- runs
# wrk_case NAME PID URL BASIC BODY MARKER -> sets R_<NAME>_* (rps, p50, p99, cpu, pg, ...)
wrk_case() {
	local name=$1 pid=$2 url=$3 out="$RAW/wrk-$1.txt" line d secs
	bg_wait wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" -s "$LUA" "$url" -- "$4" "$5" "$6" >"$out.warmup" 2>&1 ||
		die "wrk warm-up failed ($out.warmup)"
	"$PYTHON" "$LIB" snap "$out.snap0" "$pid" "$PG_PID"
	bg_wait wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$LUA" "$url" -- "$4" "$5" "$6" >"$out" 2>&1 ||
		die "wrk failed ($out)"
	"$PYTHON" "$LIB" snap "$out.snap1" "$pid" "$PG_PID"
	line=$(grep '^BENCH ' "$out") || die "no BENCH line in $out"
	kv "${line#BENCH }" B_
	d=$("$PYTHON" "$LIB" diff "$out.snap0" "$out.snap1" "$B_ok")
	kv "$d" D_
	secs=$(calc "$B_duration_us / 1000000" 6)
	printf -v "R_${name}" '%s|%s|%s|%s|%s|%s|%s|%s|%s' "$(calc "$B_ok / $secs" 0)" \
		"$(calc "$B_p50_us / 1000" 2)" "$(calc "$B_p99_us / 1000" 2)" "$D_us_0" "$D_us_1" \
		"$B_ok" "$B_bad ($B_non2xx)" "$((B_err_connect + B_err_read + B_err_write + B_err_status + B_err_timeout))" \
		"$(cut -d' ' -f1 /proc/loadavg)"
}
# flow_case NAME SUBCOMMAND N SECONDS [BASE CLIENT_ID SECRET PID...] -> R_<NAME>
# (default: idp, its web client, the idp parent's and the postmaster's trees)
flow_case() {
	local name=$1 sub=$2 n=$3 s=$4 out="$RAW/$1.txt" line d secs
	shift 4
	(($#)) || set -- "$BASE" "$WEB_ID" "$WEB_SECRET" "$IDP_PID" "$PG_PID"
	bg_wait "$PYTHON" "$FLOWPY" "$sub" "$1" "$2" "$3" "$REDIRECT" "$WORK/users" \
		"$n" "$s" "$out" "${@:4}" >"$out" 2>"$out.err" || { cat "$out.err" >&2; die "flows.py $sub failed"; }
	line=$(grep '^BENCH ' "$out") || die "no BENCH line in $out"
	kv "${line#BENCH }" B_
	d=$("$PYTHON" "$LIB" diff "$out.snap0" "$out.snap1" "$B_ok")
	kv "$d" D_
	secs=$(calc "$B_duration_us / 1000000" 6)
	printf -v "R_${name}" '%s|%s|%s|%s|%s|%s|%s|%s|%s' "$(calc "$B_ok / $secs" 1)" \
		"$(calc "$B_p50_us / 1000" 2)" "$(calc "$B_p99_us / 1000" 2)" "$D_us_0" "$D_us_1" \
		"$B_ok" "$B_bad ($B_non2xx)" "$B_errors" "$(cut -d' ' -f1 /proc/loadavg)"
	printf -v "C_${name}" '%s' "$B_client_cpu_s"
	if [[ -s $out.err ]]; then
		say "$name: failures (first ones):"
		sed 's/^/  | /' "$out.err" >&2
	fi
}

say "introspection: idp ($WARMUP warm-up, $DURATION)"
wrk_case intro_idp "$IDP_PID" "$BASE/introspect" "$IDP_BASIC" "$IDP_BODY" "$IDP_MARK"
if ((HAVE_OP)); then
	say "introspection: oidc-provider ($WARMUP warm-up, $DURATION)"
	wrk_case intro_op "$OP_PID" "http://127.0.0.1:$OP_PORT/token/introspection" "$OP_BASIC" "$OP_BODY" "$OP_MARK"
fi
say "refresh grants: $CHAINS chains (warm-up ${WARMUP%s} s, then ${REFRESH_S} s)"
flow_case refresh_warm refresh "$CHAINS" "${WARMUP%s}"
flow_case refresh refresh "$CHAINS" "$REFRESH_S"
if ((HAVE_OP)); then
	say "refresh grants: oidc-provider, $CHAINS chains (warm-up ${WARMUP%s} s, then ${REFRESH_S} s)"
	flow_case refresh_op_warm refresh "$CHAINS" "${WARMUP%s}" "$OPF_BASE" web "$OPF_SECRET" "$OPF_PID" "$PG_PID"
	flow_case refresh_op refresh "$CHAINS" "$REFRESH_S" "$OPF_BASE" web "$OPF_SECRET" "$OPF_PID" "$PG_PID"
fi
say "login-to-token flows: $FLOWS concurrent, ${LOGIN_S} s"
flow_case login login "$FLOWS" "$LOGIN_S"
if ((HAVE_OP)); then
	say "login-to-token flows: oidc-provider, $FLOWS concurrent, ${LOGIN_S} s"
	flow_case login_op login "$FLOWS" "$LOGIN_S" "$OPF_BASE" web "$OPF_SECRET" "$OPF_PID" "$PG_PID"
	LOGIN_OP_LINE=$(grep '^BENCH ' "$RAW/login_op.txt")
	kv "${LOGIN_OP_LINE#BENCH }" LO_
fi
say "the cost of one password verification, $KDF_N in a row"
ARGON_LINE=$("$PYTHON" "$FLOWPY" argon2-cost "$KDF_N") || die "argon2-cost failed"
kv "$ARGON_LINE" KA_
if ((HAVE_OP)); then
	SCRYPT_LINE=$(node "$HERE/oidc-provider-flows.mjs" scrypt-cost "$KDF_N" 2>/dev/null) || die "scrypt-cost failed"
	kv "$SCRYPT_LINE" KS_
fi
LOGIN_LINE=$(grep '^BENCH ' "$RAW/login.txt")
kv "${LOGIN_LINE#BENCH }" L_
if grep -qiE ' (5[0-9][0-9]|error|warn)' "$RAW/idp.log"; then
	IDP_LOG_NOTE="idp's log has warnings/errors: $(grep -ciE ' (5[0-9][0-9]|error|warn)' "$RAW/idp.log") lines (raw/idp.log)"
else
	IDP_LOG_NOTE="idp's log (log_level $IDP_LOG_LEVEL): no warnings or errors"
fi

# ---------------------------------------------------------------- report
row() { # LABEL R_var
	local r=${!2} rps p50 p99 cpu pg ok bad err load
	IFS='|' read -r rps p50 p99 cpu pg ok bad err load <<<"$r"
	[[ ${3-} == nopg ]] && pg=–
	echo "| $1 | $rps | $p50 | $p99 | $cpu | $pg | $ok | $bad | $err | $load |"
}
{
	echo "## idp flows (issue 4) ($STAMP)"
	echo
	echo "- nproc: $(nproc); CPU: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); kernel $(uname -r)"
	echo "- $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-3); PostgreSQL $PG_VER; node $(node --version)${OP_VER:+ with oidc-provider $OP_VER}; $("$PYTHON" --version)"
	echo "- idp: $IDP_SRC (copied at start; sha256 $(sha256sum "$IDP" | cut -c1-12)), source tree $REV;"
	echo "  \`workers = $WORKERS\`, signing_alg RS256 (default), \`log_level = $IDP_LOG_LEVEL\`, argon2_threads $ARGON2_DESC"
	echo "- load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg); busiest other processes at start: \`$BUSY_START\`"
	echo "- password hashing: Argon2id, libsodium crypto_pwhash_str with OPSLIMIT_INTERACTIVE (2 passes) and"
	echo "  MEMLIMIT_INTERACTIVE (64 MiB), one lane: stored as \`$HASH\`; $USERS users created by"
	echo "  \`idpctl user add --username uN --password-stdin\` in $USERADD_S s (sequentially, i.e. one hash each)"
	echo "- clients: \`idpctl client add --name rs --grant client_credentials\` (the introspecting one) and"
	echo "  \`idpctl client add --name web --first-party --grant authorization_code --grant refresh_token --redirect-uri $REDIRECT --scope \"openid profile email\"\`"
	echo "- settings: DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS THREADS=$THREADS REFRESH_S=$REFRESH_S CHAINS=$CHAINS LOGIN_S=$LOGIN_S FLOWS=$FLOWS USERS=$USERS"
	echo
	echo "Commands (loopback, all servers up at once, run one after the other):"
	echo
	echo "    wrk -t$THREADS -c$CONNS -d$DURATION --latency -s bench/idp/post.lua $BASE/introspect -- BASE64(rs_id:rs_secret) token=ACCESS_TOKEN '$IDP_MARK'"
	((HAVE_OP)) && echo "    wrk -t$THREADS -c$CONNS -d$DURATION --latency -s bench/idp/post.lua http://127.0.0.1:PORT/token/introspection -- BASE64(bench:secret) token=OPAQUE_TOKEN '$OP_MARK'"
	echo "    bench/idp/flows.py refresh BASE WEB_ID WEB_SECRET $REDIRECT USERS $CHAINS $REFRESH_S ...   (after a ${WARMUP%s} s warm-up run)"
	echo "    bench/idp/flows.py login   BASE WEB_ID WEB_SECRET $REDIRECT USERS $FLOWS $LOGIN_S ..."
	((HAVE_OP)) && echo "    node bench/idp/oidc-provider-flows.mjs PORT USERS   (OP_WEB_ID=web OP_REDIRECT=$REDIRECT ...), then the same two flows.py runs against it"
	echo "    bench/idp/flows.py argon2-cost $KDF_N${SCRYPT_LINE:+; node bench/idp/oidc-provider-flows.mjs scrypt-cost $KDF_N}"
	echo
	echo "| case | per s | p50 ms | p99 ms | idp tree CPU µs/op | PostgreSQL CPU µs/op | ok | bad (non-2xx) | socket errors | load avg at end |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	row "idp: POST /introspect, JWT access token (RS256), wrk -c$CONNS" R_intro_idp
	((HAVE_OP)) && row "oidc-provider: POST /token/introspection, opaque client_credentials token, wrk -c$CONNS (CPU: the node process)" R_intro_op nopg
	row "idp: refresh_token grants (rotation; access + ID + refresh token), $CHAINS closed-loop chains" R_refresh
	((HAVE_OP)) && row "oidc-provider: refresh_token grants (rotation; JWT access + ID + refresh token; in memory), $CHAINS chains (CPU: the node process)" R_refresh_op nopg
	row "idp: login-to-token flows (authorize → login form, Argon2id → code → /token), $FLOWS concurrent" R_login
	((HAVE_OP)) && row "oidc-provider: login-to-token flows (authorize → login form, scrypt → code → /token; in memory), $FLOWS concurrent (CPU: the node process)" R_login_op nopg
	echo
	echo "Login flow steps, p50 / p99 ms: GET /authorize $(calc "$L_authorize_p50_us / 1000" 1) / $(calc "$L_authorize_p99_us / 1000" 1);"
	echo "POST login form (Argon2id verify, session, redirect with code) $(calc "$L_login_p50_us / 1000" 1) / $(calc "$L_login_p99_us / 1000" 1);"
	echo "POST /token authorization_code $(calc "$L_token_p50_us / 1000" 1) / $(calc "$L_token_p99_us / 1000" 1)."
	if ((HAVE_OP)); then
		echo "oidc-provider's login flow steps, p50 / p99 ms: GET /authorize (→ 303 → GET the interaction page) $(calc "$LO_authorize_p50_us / 1000" 1) / $(calc "$LO_authorize_p99_us / 1000" 1);"
		echo "POST login form (scrypt verify, → 303 resume → redirect with code) $(calc "$LO_login_p50_us / 1000" 1) / $(calc "$LO_login_p99_us / 1000" 1);"
		echo "POST /token authorization_code $(calc "$LO_token_p50_us / 1000" 1) / $(calc "$LO_token_p99_us / 1000" 1)."
	fi
	echo
	echo "The password hash alone, after the runs (the flows cannot beat its ceiling):"
	echo
	echo "| KDF | one verification, $KDF_N in a row: ms each | $(nproc) at once ($KDF_N each): per s | CPU ms each | login flows per s ÷ that ceiling |"
	echo "|---|---:|---:|---:|---:|"
	echo "| Argon2id (libsodium crypto_pwhash_str_verify, m=64 MiB, t=2, p=1): idp | $KA_seq_ms | $KA_par_per_s | $KA_par_cpu_ms | $(calc "${R_login%%|*} / $KA_par_per_s" 2) |"
	((HAVE_OP)) && echo "| scrypt (node crypto.scrypt, N=2^${OP_SCRYPT_LOG2N:-14}, r=${OP_SCRYPT_R:-13}, p=1): oidc-provider-flows.mjs | $KS_seq_ms | $KS_par_per_s | $KS_par_cpu_ms | $(calc "${R_login_op%%|*} / $KS_par_per_s" 2) |"
	echo
	echo "The python load client used $C_refresh s (refresh) and $C_login s (login) of CPU on the same cores${C_login_op:+ (for oidc-provider: $C_refresh_op s and $C_login_op s)}."
	echo "$IDP_LOG_NOTE. Raw data: \`${RAW#"$ROOT"/}/\`."
	echo
} >"$MD"
cat "$MD"
say "wrote $MD"
