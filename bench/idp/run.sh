#!/usr/bin/env bash
# run.sh: idp against oidc-provider (npm) and nginx, side by side in one run.
#
# Usage:  bench/idp/setup.sh                  (once: nginx from apt, oidc-provider
#                                              from npm into bench/idp/node_modules)
#         ninja -C build && bench/idp/run.sh  (about 6 minutes with the defaults)
#         DURATION=5s RUNS=2 bench/idp/run.sh (a quicker pass)
#
# In one run, on loopback, with the same wrk settings for every case
# (wrk -t$THREADS -c$CONNS -d$DURATION --latency -s bench/idp/req.lua):
#   1. idp, $WORKERS workers, on a throwaway PostgreSQL cluster, no cache in
#      front: POST /token client_credentials (client_secret_basic), once with
#      signing_alg RS256 and once with ES256 (two idp instances, each on its own
#      fresh database with its own keys and client);
#   2. idp GET /jwks and GET /.well-known/openid-configuration (the RS256 one);
#   3. oidc-provider (bench/idp/oidc-provider.mjs) client_credentials with RS256
#      JWT access tokens;
#   4. nginx serving the exact bytes of idp's JWKS and discovery documents as
#      static files;
#   5. openssl speed for RSA-2048 and ECDSA P-256 signing, one and two processes.
# Every server is started once and stays up; the measured runs alternate between
# them, round after round (RUNS rounds, medians reported), after one warm-up run
# each. Server CPU = utime+stime of the server's whole process tree from /proc
# (idp: parent, signer, workers; also split by role), PostgreSQL's CPU is shown
# apart; "others" = CPU used by anything else on the machine during the run.
# Progress goes to stderr; a markdown section goes to stdout and to
# bench/out/idp-results-<stamp>.md, raw data to bench/out/idp-<stamp>/ (git-ignored).
#
# Environment (defaults in brackets):
#   DURATION [10s]   WARMUP [3s]   CONNS [32]   THREADS [1]   RUNS [3]
#   SPEED_SECONDS [3]            `openssl speed -seconds`
#   WORKERS [2]                  idp workers
#   IDP_LOG_LEVEL [warn]         idp log_level (info logs a line per request;
#                                nginx runs with access_log off)
#   NGINX_WORKERS [2]            nginx worker_processes
#   IDP [build/idp/idp]  IDPCTL [build/idp/idpctl]  NGINX [nginx]
#   PYTHON [/usr/bin/python3]    OUT_DIR [bench/out]
#
# Everything listens on 127.0.0.1 (PostgreSQL on a Unix socket only) and all load
# targets 127.0.0.1. Every server this script starts (idp parents, node, nginx
# master, the PostgreSQL postmaster) is stopped by its PID, also on error, ^C or
# TERM (a TERM that comes during a wrk run takes effect when that run ends).
#
# B_*, S_*, T_* are set with printf -v and read with ${!name}:
# shellcheck disable=SC2154,SC2034

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
RUNS=${RUNS:-3}
SPEED_SECONDS=${SPEED_SECONDS:-3}
WORKERS=${WORKERS:-2}
IDP_LOG_LEVEL=${IDP_LOG_LEVEL:-warn}
NGINX_WORKERS=${NGINX_WORKERS:-2}
IDP=${IDP:-$ROOT/build/idp/idp}
IDPCTL=${IDPCTL:-$ROOT/build/idp/idpctl}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT_DIR=${OUT_DIR:-$ROOT/bench/out}
LIB="$HERE/idpbench.py"
LUA="$HERE/req.lua"
CLK_TCK=$(getconf CLK_TCK)
BODY='grant_type=client_credentials&scope=a'
SCOPE='a b'
AUDIENCE='https://api.example'

die() { echo "run.sh: $*" >&2; exit 1; }
say() { echo "run.sh: $*" >&2; }

[[ -x $IDP ]] || die "no idp at $IDP (ninja -C build?)"
[[ -x $IDPCTL ]] || die "no idpctl at $IDPCTL (ninja -C build?)"
[[ -x $NGINX ]] || die "no nginx (bench/idp/setup.sh)"
[[ -d $HERE/node_modules/oidc-provider ]] || die "no oidc-provider in $HERE/node_modules (bench/idp/setup.sh)"
for t in node wrk openssl "$PYTHON"; do
	command -v "$t" >/dev/null || die "$t not found"
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$OUT_DIR/idp-$STAMP"
MD="$OUT_DIR/idp-results-$STAMP.md"
mkdir -p "$RAW"
WORK=$(mktemp -d /tmp/idp-bench.XXXXXX)
chmod 755 "$WORK" # nginx's workers (user nobody) read $WORK/nginx/www

# Servers this script started and has not yet stopped (PIDs), and PostgreSQL.
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
		kill -INT "$PG_PID" 2>/dev/null || true # fast shutdown
		"$PYTHON" "$LIB" pg-wait-gone "$PG_PID" "$PG_DIR" || true
		PG_PID=''
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() {
	local q keep=()
	for q in "${PIDS[@]}"; do
		[[ $q == "$1" ]] || keep+=("$q")
	done
	PIDS=("${keep[@]+"${keep[@]}"}")
}

# bg_wait CMD...: run CMD in the background and wait for it, so that a TERM to this
# script is handled at once; CMD is stopped by cleanup() like a server.
bg_wait() {
	local p rc=0
	"$@" &
	p=$!
	PIDS+=("$p")
	wait "$p" || rc=$?
	forget_pid "$p"
	return "$rc"
}

calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
summ() { "$PYTHON" "$LIB" summ; }
# col FILE COLUMN CASE: column COLUMN of the rows of TSV FILE whose first column is CASE
col() { awk -F'\t' -v c="$2" -v a="$3" '$1 == a { print $c }' "$1"; }
emit() { printf '%s\n' "$*" >>"$MD"; }
free_port() { "$PYTHON" "$LIB" port; }
ready() { # URL PID LOG
	"$PYTHON" "$LIB" ready "$1" "$2" 60 || {
		say "server did not answer $1; its log:"
		sed 's/^/  | /' "$3" >&2
		exit 1
	}
}

# Private copies, so that a rebuild in build/ during the run changes nothing.
cp "$IDP" "$WORK/idp"
cp "$IDPCTL" "$WORK/idpctl"
IDP_SRC=$IDP IDP=$WORK/idp IDPCTL=$WORK/idpctl

REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain -- idp common sql 2>/dev/null | head -1) ]]; then
	REV="$REV (idp/, common/ or sql/ have uncommitted changes)"
fi
OP_VER=$(node -p 'require(process.argv[1]).version' "$HERE/node_modules/oidc-provider/package.json")
NGINX_VER=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')

{
	echo "## idp vs oidc-provider and nginx ($STAMP)"
	echo
	echo "### Machine"
	echo
	echo "- nproc: $(nproc); CPU: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); kernel $(uname -r)"
	echo "- $(openssl version); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-3); $NGINX_VER; node $(node --version) with oidc-provider $OP_VER; PostgreSQL $("$PYTHON" -c 'import glob; print(sorted(glob.glob("/usr/lib/postgresql/*"))[-1].rsplit("/",1)[1])' 2>/dev/null || echo '?')"
	echo "- idp: $IDP_SRC (copied at start; sha256 $(sha256sum "$IDP" | cut -c1-12)), source tree $REV"
	echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg); busiest other processes at start:"
	echo '  `'"$(ps -eo pcpu=,comm= --sort=-pcpu | head -4 | awk '{printf "%s %s%%; ", $2, $1}')"'`'
	if awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
		echo "- **warning: the machine was not idle at start** (1-minute load above nproc/2): other processes share the cores, see the \"others\" column below"
	fi
	echo "- settings: DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS THREADS=$THREADS RUNS=$RUNS SPEED_SECONDS=$SPEED_SECONDS WORKERS=$WORKERS IDP_LOG_LEVEL=$IDP_LOG_LEVEL NGINX_WORKERS=$NGINX_WORKERS"
	echo
} >>"$MD"

# ---------------------------------------------------------------- openssl speed
# Run before and after the servers' runs (other load on a shared machine comes and
# goes); the signing limit used below is the higher of the two.
speed_col() { # FILE PATTERN -> sign/s (second to last column of the last match)
	awk -v p="$2" '$0 ~ p { v = $(NF-1) } END { print v }' "$1"
}
SPEED_CMDS=(
	"rsa1|openssl speed -seconds $SPEED_SECONDS rsa2048|^rsa 2048 bits"
	"ec1|openssl speed -seconds $SPEED_SECONDS ecdsap256|nistp256"
	"rsa2|openssl speed -multi 2 -seconds $SPEED_SECONDS rsa2048|^rsa 2048 bits"
	"ec2|openssl speed -multi 2 -seconds $SPEED_SECONDS ecdsap256|nistp256"
)
run_speed() { # PASS (a = before, b = after): sets SPEED_<key>_<pass>, LOAD_SPEED_<pass>
	local s key cmd pat v
	say "openssl speed ($1): 4 commands, ${SPEED_SECONDS}s per measurement"
	for s in "${SPEED_CMDS[@]}"; do
		IFS='|' read -r key cmd pat <<<"$s"
		# shellcheck disable=SC2086
		bg_wait $cmd >"$RAW/speed-$key-$1.txt" 2>&1 || die "$cmd failed"
		v=$(speed_col "$RAW/speed-$key-$1.txt" "$pat")
		[[ -n $v ]] || die "could not parse $RAW/speed-$key-$1.txt"
		printf -v "SPEED_${key}_$1" '%s' "$v"
		printf -v "SPEEDCMD_$key" '%s' "$cmd"
	done
	printf -v "LOAD_SPEED_$1" '%s' "$(cut -d' ' -f1 /proc/loadavg)"
}
run_speed a

# ---------------------------------------------------------------- PostgreSQL + idp
say "PostgreSQL: throwaway cluster with databases idp_rs256, idp_es256"
eval "$("$PYTHON" "$LIB" pg-start idp_rs256 idp_es256)" || die "could not start PostgreSQL"
[[ -n $PG_PID ]] || die "pg-start printed no PG_PID"

# idp_start ALG CONNINFO: kek, migrate, client, config, start; sets IDP_<ALG>_{PID,PORT,ID,SECRET}
idp_start() {
	local alg=$1 db=$2 d="$WORK/idp-$1" port json id secret pid
	mkdir -p "$d"
	port=$(free_port)
	"$IDPCTL" kek generate "$d/kek" >/dev/null
	"$IDPCTL" -d "$db" migrate >"$d/migrate.log" 2>&1 || { cat "$d/migrate.log" >&2; die "idpctl migrate failed"; }
	json=$("$IDPCTL" -d "$db" client add --name bench --grant client_credentials \
		--scope "$SCOPE" --audience "$AUDIENCE" --json) || die "idpctl client add failed"
	id=$("$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$json")
	secret=$("$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$json")
	cat >"$d/idp.conf" <<-EOF
		issuer = "http://127.0.0.1:$port"
		listen = "127.0.0.1:$port"
		database = "$db"
		key_encryption_key_file = "$d/kek"
		workers = $WORKERS
		signing_alg = $alg
		log_level = $IDP_LOG_LEVEL
	EOF
	"$IDP" -c "$d/idp.conf" >"$RAW/idp-$alg.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	ready "http://127.0.0.1:$port/readyz" "$pid" "$RAW/idp-$alg.log"
	printf -v "IDP_${alg}_PID" '%s' "$pid"
	printf -v "IDP_${alg}_PORT" '%s' "$port"
	printf -v "IDP_${alg}_ID" '%s' "$id"
	printf -v "IDP_${alg}_SECRET" '%s' "$secret"
}
say "idp: RS256 and ES256 instances, $WORKERS workers each"
idp_start RS256 "$PG_CONNINFO_1"
idp_start ES256 "$PG_CONNINFO_2"

# ---------------------------------------------------------------- oidc-provider
say "oidc-provider: one client, RS256 JWT access tokens"
NODE_PORT=$(free_port)
NODE_SECRET=$(openssl rand -hex 32)
OP_CLIENT_ID=bench OP_CLIENT_SECRET=$NODE_SECRET OP_SCOPE=$SCOPE OP_AUDIENCE=$AUDIENCE \
	NODE_ENV=production node "$HERE/oidc-provider.mjs" "$NODE_PORT" >"$RAW/oidc-provider.log" 2>&1 &
NODE_PID=$!
PIDS+=("$NODE_PID")
ready "http://127.0.0.1:$NODE_PORT/jwks" "$NODE_PID" "$RAW/oidc-provider.log"

# ---------------------------------------------------------------- tokens verify
say "checking one token of each server (jose jwtVerify against its JWKS)"
: >"$RAW/verify.txt"
verify() { # NAME BASE ID SECRET ALG
	local line
	line=$(node "$HERE/verify.mjs" "$2" /jwks "$3" "$4" "$BODY" "$5") ||
		die "$1: the token does not verify (see above)"
	printf '%s: %s\n' "$1" "$line" >>"$RAW/verify.txt"
}
verify "idp RS256" "http://127.0.0.1:$IDP_RS256_PORT" "$IDP_RS256_ID" "$IDP_RS256_SECRET" RS256
verify "idp ES256" "http://127.0.0.1:$IDP_ES256_PORT" "$IDP_ES256_ID" "$IDP_ES256_SECRET" ES256
verify "oidc-provider" "http://127.0.0.1:$NODE_PORT" bench "$NODE_SECRET" RS256

# ---------------------------------------------------------------- nginx
say "nginx: $NGINX_WORKERS workers serving idp's JWKS and discovery bytes"
NG="$WORK/nginx"
mkdir -p "$NG/www" "$NG/logs"
IDP_BASE="http://127.0.0.1:$IDP_RS256_PORT"
"$PYTHON" "$LIB" fetch "$IDP_BASE/jwks" "$NG/www/jwks.json"
"$PYTHON" "$LIB" fetch "$IDP_BASE/.well-known/openid-configuration" "$NG/www/openid-configuration.json"
chmod 755 "$NG" "$NG/www"
chmod 644 "$NG/www/"*.json
hdr() { "$PYTHON" "$LIB" headers "$1" | awk -v h="$2" 'tolower($0) ~ "^" tolower(h) ": " { sub(/^[^:]*: /, ""); print }'; }
CC_JWKS=$(hdr "$IDP_BASE/jwks" Cache-Control)
CC_DISC=$(hdr "$IDP_BASE/.well-known/openid-configuration" Cache-Control)
NGINX_PORT=$(free_port)
cat >"$NG/nginx.conf" <<EOF
# written by bench/idp/run.sh
worker_processes $NGINX_WORKERS;
pid $NG/nginx.pid;
error_log $NG/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $NG/client_body;
    proxy_temp_path $NG/proxy;
    fastcgi_temp_path $NG/fastcgi;
    uwsgi_temp_path $NG/uwsgi;
    scgi_temp_path $NG/scgi;
    default_type application/json;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /jwks {
            alias $NG/www/jwks.json;
            add_header Cache-Control "$CC_JWKS";
        }
        location = /.well-known/openid-configuration {
            alias $NG/www/openid-configuration.json;
            add_header Cache-Control "$CC_DISC";
        }
    }
}
EOF
cp "$NG/nginx.conf" "$RAW/nginx.conf"
"$NGINX" -c "$NG/nginx.conf" -p "$NG" -g 'daemon off;' >"$RAW/nginx.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
ready "http://127.0.0.1:$NGINX_PORT/jwks" "$NGINX_PID" "$RAW/nginx.log"
for p in jwks .well-known/openid-configuration; do
	"$PYTHON" "$LIB" fetch "http://127.0.0.1:$NGINX_PORT/$p" "$WORK/cmp"
	"$PYTHON" "$LIB" fetch "$IDP_BASE/$p" "$WORK/cmp-idp"
	cmp -s "$WORK/cmp" "$WORK/cmp-idp" || die "nginx's /$p differs from idp's"
done
for u in "$IDP_BASE/jwks" "http://127.0.0.1:$NGINX_PORT/jwks" \
	"$IDP_BASE/.well-known/openid-configuration" "http://127.0.0.1:$NGINX_PORT/.well-known/openid-configuration"; do
	echo "== GET $u"
	"$PYTHON" "$LIB" headers "$u"
done >"$RAW/headers.txt"

# ---------------------------------------------------------------- the cases
b64() { printf '%s' "$1" | base64 -w0; }
# name|label|server pid|url|req.lua arguments (2, |-separated)
CASES=(
	"tok_rs_idp|idp RS256 tokens|$IDP_RS256_PID|http://127.0.0.1:$IDP_RS256_PORT/token|token|$(b64 "$IDP_RS256_ID:$IDP_RS256_SECRET")|$BODY"
	"tok_rs_node|oidc-provider RS256 tokens|$NODE_PID|http://127.0.0.1:$NODE_PORT/token|token|$(b64 "bench:$NODE_SECRET")|$BODY"
	"tok_es_idp|idp ES256 tokens|$IDP_ES256_PID|http://127.0.0.1:$IDP_ES256_PORT/token|token|$(b64 "$IDP_ES256_ID:$IDP_ES256_SECRET")|$BODY"
	"jwks_idp|idp GET /jwks|$IDP_RS256_PID|$IDP_BASE/jwks|get|\"keys\""
	"jwks_nginx|nginx GET /jwks (static)|$NGINX_PID|http://127.0.0.1:$NGINX_PORT/jwks|get|\"keys\""
	"disc_idp|idp GET /.well-known/openid-configuration|$IDP_RS256_PID|$IDP_BASE/.well-known/openid-configuration|get|\"issuer\""
	"disc_nginx|nginx GET /.well-known/openid-configuration (static)|$NGINX_PID|http://127.0.0.1:$NGINX_PORT/.well-known/openid-configuration|get|\"issuer\""
)

# snap_kv LINE PREFIX: set PREFIX<key> for each k=v in LINE
snap_kv() {
	local kv
	for kv in $1; do
		printf -v "$2${kv%%=*}" '%s' "${kv#*=}"
	done
}

# wrk_run PID URL DURATION OUT ARGS...: one wrk run between two /proc snapshots
# (OUT.snap0, OUT.snap1); sets B_* from the BENCH line, D_* from `idpbench.py diff`
# and WRK_CPU (wrk's user+sys seconds).
wrk_run() {
	local pid=$1 url=$2 dur=$3 out=$4 line
	shift 4
	"$PYTHON" "$LIB" snap "$out.snap0" "$pid" "$PG_PID"
	local TIMEFORMAT='%U %S'
	{ time wrk -t"$THREADS" -c"$CONNS" -d"$dur" --latency -s "$LUA" "$url" -- "$@" \
		>"$out" 2>&1; } 2>"$out.time" || die "wrk failed, see $out"
	"$PYTHON" "$LIB" snap "$out.snap1" "$pid" "$PG_PID" || die "snapshot after $out failed"
	WRK_CPU=$(awk '{ printf "%.2f", $1 + $2 }' "$out.time")
	line=$(grep '^BENCH ' "$out") || die "no BENCH line in $out"
	snap_kv "${line#BENCH }" B_
	snap_kv "$("$PYTHON" "$LIB" diff "$out.snap0" "$out.snap1" "$B_ok")" D_
	((D_changed == 0)) ||
		say "WARNING: the process tree of $pid changed during $out: a child restarted?"
}

printf 'case\tround\trps\tcpu_us\tcores\tp50_ms\tp99_ms\tok\tbad\tnon2xx\terrors\twrk_cpu_s\tothers\tpg_us\tparent_us\tsigner_us\tworkers_us\tload1\tworker_split\tsigner_threads\n' \
	>"$RAW/runs.tsv"

measure() { # CASE ROUND DURATION
	local c=$1 r=$2 dur=$3 name label pid url a1 a2 a3 secs errs
	IFS='|' read -r name label pid url a1 a2 a3 <<<"$c"
	local out="$RAW/wrk-$name-$r.txt"
	wrk_run "$pid" "$url" "$dur" "$out" "$a1" "$a2" ${a3:+"$a3"}
	((r == 0)) && return 0 # warm-up
	secs=$(calc "$B_duration_us / 1000000" 6)
	errs=$((B_err_connect + B_err_read + B_err_write + B_err_status + B_err_timeout))
	printf '%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$name" "$r" "$(calc "$B_ok / $secs" 1)" "$D_us_0" \
		"$(calc "$D_ticks_0 / $CLK_TCK / $D_window" 2)" \
		"$(calc "$B_p50_us / 1000" 3)" "$(calc "$B_p99_us / 1000" 3)" \
		"$B_ok" "$B_bad" "$B_non2xx" "$errs" "$WRK_CPU" \
		"$(calc "($D_busy - $D_ticks_0 - $D_ticks_1) / $CLK_TCK / $D_window - $WRK_CPU / $D_window" 2)" \
		"$D_us_1" "$D_parent_us" "$D_signer_us" "$D_workers_us" \
		"$(cut -d' ' -f1 /proc/loadavg)" "$D_worker_split" "$D_signer_threads" >>"$RAW/runs.tsv"
	((B_bad == 0 && errs == 0)) ||
		say "WARNING: $name run $r: $B_bad bad responses ($B_non2xx non-2xx), $errs socket errors"
}

say "warm-up: $WARMUP per case"
for c in "${CASES[@]}"; do
	measure "$c" 0 "$WARMUP"
done
for ((r = 1; r <= RUNS; r++)); do
	for c in "${CASES[@]}"; do
		say "round $r/$RUNS: ${c%%|*} ($DURATION)"
		measure "$c" "$r" "$DURATION"
	done
done

# T_<case>_<metric>: medians over RUNS; range of requests/s; sums of errors
METRICS=(rps cpu_us cores p50_ms p99_ms ok bad non2xx errors wrk_cpu_s others pg_us parent_us signer_us workers_us load1)
for c in "${CASES[@]}"; do
	name=${c%%|*}
	i=3
	for m in "${METRICS[@]}"; do
		case $m in
		ok | bad | non2xx | errors) v=$(col "$RAW/runs.tsv" $i "$name" | awk '{ t += $1 } END { print t + 0 }') ;;
		*) read -r v _ < <(col "$RAW/runs.tsv" $i "$name" | summ) ;;
		esac
		printf -v "T_${name}_$m" '%s' "$v"
		i=$((i + 1))
	done
	read -r _ lo hi _ < <(col "$RAW/runs.tsv" 3 "$name" | summ)
	printf -v "T_${name}_range" '%s–%s' "$(calc "$lo" 0)" "$(calc "$hi" 0)"
done
tv() { local n="T_$1_$2"; printf '%s' "${!n}"; }
fmt() { if [[ $1 == nan || $1 == - ]]; then echo –; else calc "$1" "${2:-0}"; fi; }

WRK_FMT="wrk -t$THREADS -c$CONNS -d$DURATION --latency -s bench/idp/req.lua"
{
	echo "### Servers"
	echo
	echo "- **idp**: \`idp -c idp.conf\`, two instances on one throwaway PostgreSQL cluster"
	echo "  (tests/lib/pgcluster.py: Unix socket, fsync off), each with a fresh database"
	echo "  (\`idpctl migrate\`), its own key-encryption key and keys, and one client"
	echo "  (\`idpctl client add --name bench --grant client_credentials --scope \"$SCOPE\" --audience $AUDIENCE --json\`);"
	echo "  config: \`workers = $WORKERS\`, \`signing_alg = RS256\` resp. \`ES256\`, \`log_level = $IDP_LOG_LEVEL\`, issuer and listen http://127.0.0.1:PORT."
	echo "- **oidc-provider** $OP_VER: \`NODE_ENV=production node bench/idp/oidc-provider.mjs PORT\` (in-memory, one"
	echo "  client, client_secret_basic, \`features.clientCredentials\`, \`features.resourceIndicators\` with"
	echo "  \`accessTokenFormat: 'jwt'\` and RS256, one RSA-2048 key; one node process, as it runs by default)."
	echo "- **nginx**: \`nginx -c nginx.conf -p PREFIX -g 'daemon off;'\` with \`worker_processes $NGINX_WORKERS; access_log off;"
	echo "  keepalive_requests 100000000;\` serving the bytes fetched from idp's \`/jwks\` ($(stat -c %s "$NG/www/jwks.json") bytes) and"
	echo "  \`/.well-known/openid-configuration\` ($(stat -c %s "$NG/www/openid-configuration.json") bytes) as static files (checked identical with \`cmp\`),"
	echo "  with idp's Cache-Control values (\`$CC_JWKS\`, \`$CC_DISC\`) added."
	echo "- One token of each server was fetched exactly as the load does and verified against the"
	echo "  server's JWKS with jose's \`jwtVerify\` (\`node bench/idp/verify.mjs\`):"
	sed 's/^/  - /' "$RAW/verify.txt"
	echo
	echo "### Throughput and latency"
	echo
	echo "Every server up at once; one warm-up run of $WARMUP per case, then $RUNS rounds, each"
	echo "running every case once in the order of the table (servers alternate). Every run:"
	echo
	echo "    $WRK_FMT http://127.0.0.1:PORT/token -- token BASE64(client_id:client_secret) '$BODY'"
	echo "    $WRK_FMT http://127.0.0.1:PORT/jwks -- get '\"keys\"'"
	echo "    $WRK_FMT http://127.0.0.1:PORT/.well-known/openid-configuration -- get '\"issuer\"'"
	echo
	echo "(the token runs POST with \`Authorization: Basic\`, i.e. client_secret_basic; req.lua counts"
	echo "a response as ok only if it is a 2xx containing \`\"access_token\"\` resp. the marker). req/s ="
	echo "ok responses / wrk's duration. CPU µs/req = utime+stime of the server's whole process"
	echo "tree (/proc, before and after the run) / ok responses; \"cores\" = that CPU per wall"
	echo "second. PostgreSQL's CPU (postmaster and backends) is apart, per ok response. wrk runs on"
	echo "the same $(nproc) cores (its CPU seconds per run are shown); \"others\" = cores busy with anything"
	echo "but the server, PostgreSQL and wrk during the run (/proc/stat), i.e. other load on the"
	echo "machine; \"load avg\" = the 1-minute load average at the end of the run. Medians of $RUNS"
	echo "runs; bad = non-ok responses, summed over the runs."
	echo
	echo "| case | req/s (min–max) | CPU µs/req | cores | p50 ms | p99 ms | bad (non-2xx) | socket errors | wrk CPU s | others | load avg | PostgreSQL µs/req |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for c in "${CASES[@]}"; do
		IFS='|' read -r name label _ <<<"$c"
		echo "| $label | $(fmt "$(tv "$name" rps)") ($(tv "$name" range)) | $(fmt "$(tv "$name" cpu_us)") | $(fmt "$(tv "$name" cores)" 2) | $(fmt "$(tv "$name" p50_ms)" 2) | $(fmt "$(tv "$name" p99_ms)" 2) | $(tv "$name" bad) ($(tv "$name" non2xx)) | $(tv "$name" errors) | $(fmt "$(tv "$name" wrk_cpu_s)" 1) | $(fmt "$(tv "$name" others)" 2) | $(fmt "$(tv "$name" load1)" 2) | $(fmt "$(tv "$name" pg_us)" 1) |"
	done
	echo
	echo "idp's CPU per ok response by process (medians, µs): parent / signer / workers; and how"
	echo "the load spread: each worker's and each busy signer thread's share of their CPU (%, largest"
	echo "first; one entry per run). The signer serves each worker on its own thread, so a worker"
	echo "that holds most of wrk's $CONNS keep-alive connections also gets most of the signing."
	echo
	echo "| case | parent | signer | workers (all) | whole tree | worker shares per run | signer-thread shares per run |"
	echo "|---|---:|---:|---:|---:|---|---|"
	for c in "${CASES[@]}"; do
		IFS='|' read -r name label _ <<<"$c"
		[[ $name == *_idp ]] || continue
		ws=$(col "$RAW/runs.tsv" 19 "$name" | paste -sd' ' | sed 's/ /, /g')
		st=$(col "$RAW/runs.tsv" 20 "$name" | paste -sd' ' | sed 's/ /, /g')
		echo "| $label | $(fmt "$(tv "$name" parent_us)" 1) | $(fmt "$(tv "$name" signer_us)" 1) | $(fmt "$(tv "$name" workers_us)" 1) | $(fmt "$(tv "$name" cpu_us)" 1) | $ws | $st |"
	done
	echo
} >>"$MD"

# ---------------------------------------------------------------- openssl speed again
run_speed b
{
	echo "### openssl speed (sign/s): the signing limits of one and of two cores"
	echo
	echo "Each command ran before the servers' runs (1-minute load average then: $LOAD_SPEED_a) and"
	echo "after them (load $LOAD_SPEED_b); the limit used for the targets is the higher of the two."
	echo "\`-multi 2\` runs two processes and reports their summed rate."
	echo
	echo "| command | before | after | limit | µs of one core per signature |"
	echo "|---|---:|---:|---:|---:|"
	for key in rsa1 ec1 rsa2 ec2; do
		a="SPEED_${key}_a" b="SPEED_${key}_b" c="SPEEDCMD_$key"
		v=$(awk -v x="${!a}" -v y="${!b}" 'BEGIN { print (x > y) ? x : y }')
		printf -v "SPEED_$key" '%s' "$v"
		n=1
		[[ $key == *2 ]] && n=2
		echo "| \`${!c}\` | ${!a} | ${!b} | $v | $(calc "$n * 1000000 / $v" 1) |"
	done
	echo
} >>"$MD"

# ---------------------------------------------------------------- targets
verdict() { awk "BEGIN { exit !($1) }" && echo met || echo "**missed**"; }
RS=$(tv tok_rs_idp rps) ES=$(tv tok_es_idp rps) NODE=$(tv tok_rs_node rps)
JW=$(tv jwks_idp rps) JWN=$(tv jwks_nginx rps) DI=$(tv disc_idp rps) DIN=$(tv disc_nginx rps)
NGX=$(awk -v a="$JWN" -v b="$DIN" 'BEGIN { print (a > b) ? a : b }')
CPU_RS=$(tv tok_rs_idp cpu_us)
# The two-core limit: \`openssl speed -multi 2\`, unless other load on the shared
# machine pulled it below 90% of twice the one-core figure (two processes need both
# cores free, one needs only one; undisturbed, -multi 2 gives about 98% of twice one
# core here): then twice the one-core figure, the stricter yardstick.
if awk -v m="$SPEED_rsa2" -v s="$SPEED_rsa1" 'BEGIN { exit !(m >= 0.9 * 2 * s) }'; then
	RSA2=$SPEED_rsa2 RSA2_HOW="\`openssl speed -multi 2\`"
else
	RSA2=$(calc "2 * $SPEED_rsa1" 1)
	RSA2_HOW="2 × the one-core $SPEED_rsa1/s, above \`-multi 2\`'s $SPEED_rsa2/s which other load depressed"
fi
BAD_ALL=0
for c in "${CASES[@]}"; do
	name=${c%%|*}
	BAD_ALL=$((BAD_ALL + $(tv "$name" bad) + $(tv "$name" errors)))
done
{
	echo "### Targets (issue 3)"
	echo
	echo "| target | measured | ratio | result |"
	echo "|---|---|---:|---|"
	echo "| RS256 tokens/s ≥ 70% of the two-core RSA-2048 sign/s | $(fmt "$RS")/s vs $(fmt "$RSA2")/s ($RSA2_HOW) | $(calc "$RS / $RSA2" 2) | $(verdict "$RS >= 0.70 * $RSA2") |"
	echo "| CPU per RS256 token < 320 µs (idp's whole process tree) | $(fmt "$CPU_RS") µs (+ PostgreSQL $(fmt "$(tv tok_rs_idp pg_us)") µs) | $(calc "$CPU_RS / 320" 2) of the bound | $(verdict "$CPU_RS < 320") |"
	echo "| ES256 tokens/s ≥ 8 × oidc-provider's RS256 tokens/s | $(fmt "$ES")/s vs $(fmt "$NODE")/s | $(calc "$ES / $NODE" 2)× | $(verdict "$ES >= 8 * $NODE") |"
	echo "| ES256 tokens/s ≥ 40% of nginx's static req/s (the faster of its two files) | $(fmt "$ES")/s vs $(fmt "$NGX")/s | $(calc "$ES / $NGX" 2) | $(verdict "$ES >= 0.40 * $NGX") |"
	echo "| JWKS req/s ≥ 80% of nginx's | $(fmt "$JW")/s vs $(fmt "$JWN")/s | $(calc "$JW / $JWN" 2) | $(verdict "$JW >= 0.80 * $JWN") |"
	echo "| discovery req/s ≥ 80% of nginx's | $(fmt "$DI")/s vs $(fmt "$DIN")/s | $(calc "$DI / $DIN" 2) | $(verdict "$DI >= 0.80 * $DIN") |"
	for n in tok_es_idp jwks_idp disc_idp; do
		case $n in tok_es_idp) l="ES256 tokens" ;; jwks_idp) l="JWKS" ;; disc_idp) l="discovery" ;; esac
		p=$(tv "$n" p99_ms)
		echo "| p99 < 5 ms at $CONNS connections: $l | $(calc "$p" 2) ms | $(calc "$p / 5" 2) of the bound | $(verdict "$p < 5") |"
	done
	echo "| (for reference) RS256 tokens/s vs oidc-provider's | $(fmt "$RS")/s vs $(fmt "$NODE")/s | $(calc "$RS / $NODE" 2)× | |"
	echo "| every response ok, no socket errors, in every case | $BAD_ALL bad responses + socket errors | | $(verdict "$BAD_ALL == 0") |"
	echo
	echo "Yardsticks: one RSA-2048 signature costs $(calc "1000000 / $SPEED_rsa1" 0) µs of one core and one"
	echo "P-256 signature $(calc "1000000 / $SPEED_ec1" 0) µs (\`openssl speed\`, one process); idp spent"
	echo "$(fmt "$CPU_RS") µs per RS256 token and $(fmt "$(tv tok_es_idp cpu_us)") µs per ES256 token in its process tree, i.e."
	echo "$(fmt "$(calc "$CPU_RS - 1000000 / $SPEED_rsa1" 1)") resp. $(fmt "$(calc "$(tv tok_es_idp cpu_us) - 1000000 / $SPEED_ec1" 1)") µs beyond the signature itself."
	echo
	echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg). Raw data (wrk output, /proc numbers per run in"
	echo "\`runs.tsv\`, logs, nginx.conf, response headers): \`${RAW#"$ROOT"/}/\`."
	echo
} >>"$MD"

cat "$MD"
say "wrote $MD"
