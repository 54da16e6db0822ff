#!/usr/bin/env bash
# run.sh: mockidp against oauth2-mock-server@9.3.0, side by side in one run.
#
# Usage:  bench/run.sh                       (from any directory; build first:
#                                             ninja -C build)
#         DURATION=5s RUNS=2 bench/run.sh    (a quicker pass)
#
# Measures, alternating the two servers (mockidp, node, mockidp, node, ...)
# with the same settings for both:
#   1. start-up: exec -> first 200 on GET /jwks (polled every 2 ms), with a
#      generated key and with an RS256 --jwk file;
#   2. VmRSS after MEM_REQS client_credentials tokens (RS256 --jwk file);
#   3. client_credentials tokens/s under wrk, server CPU time per token
#      (utime+stime from /proc/PID/stat), p50/p99 latency, for the same RS256
#      and then the same ES256 --jwk file; plus `openssl speed` for RSA-2048 and
#      ECDSA P-256 sign/s as the yardstick.
# Progress goes to stderr; a markdown section goes to stdout and to
# bench/out/results-<stamp>.md, raw data to bench/out/<stamp>/ (git-ignored).
#
# Environment (defaults in brackets):
#   DURATION [10s]      wrk duration of one measured run
#   WARMUP [3s]         wrk warm-up per server before the measured runs
#   CONNS [32]          wrk connections
#   THREADS [1]         wrk threads (same for both servers; wrk shares the 2 cores)
#   RUNS [3]            measured wrk runs per server and algorithm
#   STARTUP_RUNS [15]   start-up rounds (each round runs all four cases once)
#   MEM_RUNS [3]        memory rounds (each starts both servers afresh)
#   MEM_REQS [1000]     token requests before reading VmRSS
#   SPEED_SECONDS [3]   `openssl speed -seconds`
#   MOCKIDP [build/mockidp/mockidp]
#   NODE_CLI [tests/node_modules/oauth2-mock-server/dist/oauth2-mock-server.mjs,
#             else /tmp/ref/node_modules/...]
#   PYTHON [/usr/bin/python3]
#   OUT_DIR [bench/out]
#
# Every server listens on 127.0.0.1 and all load targets 127.0.0.1. Each server
# this script starts is stopped by its PID (and only those), also on error, ^C or
# TERM (a TERM that comes during a wrk run takes effect when that run ends).
#
# B_*, T_*, PORT_*, PID_* are set with printf -v and read with ${!name}:
# shellcheck disable=SC2154,SC2034

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
RUNS=${RUNS:-3}
STARTUP_RUNS=${STARTUP_RUNS:-15}
MEM_RUNS=${MEM_RUNS:-3}
MEM_REQS=${MEM_REQS:-1000}
SPEED_SECONDS=${SPEED_SECONDS:-3}
MOCKIDP=${MOCKIDP:-$ROOT/build/mockidp/mockidp}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT_DIR=${OUT_DIR:-$HERE/out}
if [[ -z ${NODE_CLI:-} ]]; then
	for d in "$ROOT/tests/node_modules" /tmp/ref/node_modules; do
		NODE_CLI=$d/oauth2-mock-server/dist/oauth2-mock-server.mjs
		[[ -f $NODE_CLI ]] && break
	done
fi
LIB="$HERE/benchlib.py"
LUA="$HERE/token.lua"
CLK_TCK=$(getconf CLK_TCK)

die() { echo "run.sh: $*" >&2; exit 1; }
say() { echo "run.sh: $*" >&2; }

[[ -x $MOCKIDP ]] || die "no mockidp at $MOCKIDP (ninja -C build?)"
[[ -f $NODE_CLI ]] || die "no oauth2-mock-server at $NODE_CLI (cd tests && npm install)"
for t in node wrk openssl "$PYTHON"; do
	command -v "$t" >/dev/null || die "$t not found"
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$OUT_DIR/$STAMP"
MD="$OUT_DIR/results-$STAMP.md"
mkdir -p "$RAW"
WORK=$(mktemp -d /tmp/mockidp-bench.XXXXXX)

# PIDs of servers this script started and has not yet stopped.
PIDS=()
cleanup() {
	local i p
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do # newest (load, timer) first
		p=${PIDS[i]}
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	PIDS=()
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_server LOG CMD... : run CMD -a 127.0.0.1 -p 0 in the background, wait
# until it answers GET /jwks; sets SRV_PID and SRV_PORT.
start_server() {
	local log=$1
	shift
	"$@" -a 127.0.0.1 -p 0 >"$log" 2>&1 &
	SRV_PID=$!
	PIDS+=("$SRV_PID")
	if ! SRV_PORT=$("$PYTHON" "$LIB" ready "$log" "$SRV_PID" 30); then
		echo "run.sh: server did not start: $* -a 127.0.0.1 -p 0" >&2
		sed 's/^/  | /' "$log" >&2
		exit 1
	fi
}

# bg_wait CMD...: run CMD in the background and wait for it, so that a TERM to
# this script is handled at once (bash runs traps only between foreground
# commands); CMD is stopped by cleanup() like a server.
bg_wait() {
	local p rc=0
	"$@" &
	p=$!
	PIDS+=("$p")
	wait "$p" || rc=$?
	forget_pid "$p"
	return "$rc"
}

forget_pid() {
	local q keep=()
	for q in "${PIDS[@]}"; do
		[[ $q == "$1" ]] || keep+=("$q")
	done
	PIDS=("${keep[@]+"${keep[@]}"}")
}

stop_server() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	forget_pid "$1"
}

rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
summ() { "$PYTHON" "$LIB" summ; }
# median of column $2 of rows in TSV $1 whose first columns match $3 ($4)
col() { awk -F'\t' -v c="$2" -v a="$3" -v b="${4:-}" \
	'$1 == a && (b == "" || $2 == b) { print $c }' "$1"; }
emit() { printf '%s\n' "$*" >>"$MD"; }

# Run a private copy, so that a rebuild in build/ during the run changes nothing.
cp "$MOCKIDP" "$WORK/mockidp"
MOCKIDP_SRC=$MOCKIDP
MOCKIDP=$WORK/mockidp

# ---------------------------------------------------------------- keys
cd "$WORK"
"$MOCKIDP" token --alg RS256 --save-jwk >/dev/null 2>&1
"$MOCKIDP" token --alg ES256 --save-jwk >/dev/null 2>&1
JWK_RS256='' JWK_ES256=''
for f in "$WORK"/*.json; do
	grep -q '"alg": *"RS256"' "$f" && JWK_RS256=$f
	grep -q '"alg": *"ES256"' "$f" && JWK_ES256=$f
done
[[ -n $JWK_RS256 && -n $JWK_ES256 ]] || die "mockidp token --save-jwk wrote no RS256/ES256 JWK"

MOCK_CMD=("$MOCKIDP")
NODE_CMD=(node "$NODE_CLI")
NODE_VER=$(node --version)
MOCK_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null | head -1) ]]; then
	MOCK_REV="$MOCK_REV (work tree has uncommitted changes)"
fi
NODE_PKG_VER=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
	"$(dirname "$NODE_CLI")/../package.json" | head -1)

{
	echo "## Benchmark: mockidp vs oauth2-mock-server@$NODE_PKG_VER ($STAMP)"
	echo
	echo "### Machine"
	echo
	echo "- nproc: $(nproc); CPU: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); kernel $(uname -r)"
	echo "- node $NODE_VER (its OpenSSL: $(node -p process.versions.openssl)); $(openssl version); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-3); $("$PYTHON" --version)"
	echo "- mockidp: $MOCKIDP_SRC (copied at start; sha256 $(sha256sum "$MOCKIDP" | cut -c1-12)), source tree $MOCK_REV; oauth2-mock-server: $NODE_CLI"
	echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg); busiest other processes at start:"
	echo '  `'"$(ps -eo pcpu=,comm= --sort=-pcpu | head -3 | awk '{printf "%s %s%%; ", $2, $1}')"'`'
	if awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
		echo "- **warning: the machine was not idle at start** (1-minute load above nproc/2): other processes share the cores, see the \"others\" column below"
	fi
	echo "- settings: DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS THREADS=$THREADS RUNS=$RUNS STARTUP_RUNS=$STARTUP_RUNS MEM_RUNS=$MEM_RUNS MEM_REQS=$MEM_REQS SPEED_SECONDS=$SPEED_SECONDS"
	echo "- JWK files: made by \`mockidp token --alg RS256 --save-jwk\` and \`mockidp token --alg ES256 --save-jwk\`; both servers load the same file."
	echo
} >>"$MD"

# ---------------------------------------------------------------- openssl speed
say "openssl speed: 3 commands"
speed_col() { # FILE PATTERN -> sign/s (second to last column)
	awk -v p="$2" '$0 ~ p { v = $(NF-1) } END { print v }' "$1"
}
openssl speed -seconds "$SPEED_SECONDS" rsa2048 >"$RAW/speed-rsa2048.txt" 2>&1
openssl speed -seconds "$SPEED_SECONDS" ecdsap256 >"$RAW/speed-ecdsap256.txt" 2>&1
openssl speed -multi 2 -seconds "$SPEED_SECONDS" rsa2048 >"$RAW/speed-multi2-rsa2048.txt" 2>&1
SPEED_RSA=$(speed_col "$RAW/speed-rsa2048.txt" '^rsa 2048 bits')
SPEED_EC=$(speed_col "$RAW/speed-ecdsap256.txt" 'nistp256')
SPEED_RSA2=$(speed_col "$RAW/speed-multi2-rsa2048.txt" '^rsa 2048 bits')
[[ -n $SPEED_RSA && -n $SPEED_EC && -n $SPEED_RSA2 ]] || die "could not parse openssl speed output in $RAW"

{
	echo "### openssl speed (sign/s)"
	echo
	echo "| command | sign/s |"
	echo "|---|---:|"
	echo "| \`openssl speed -seconds $SPEED_SECONDS rsa2048\` (one core) | $SPEED_RSA |"
	echo "| \`openssl speed -seconds $SPEED_SECONDS ecdsap256\` (one core) | $SPEED_EC |"
	echo "| \`openssl speed -multi 2 -seconds $SPEED_SECONDS rsa2048\` (two processes, summed) | $SPEED_RSA2 |"
} >>"$MD"

# Yardstick for start-up with a generated key: one RSA-2048 key generation by the
# openssl command (process start included), STARTUP_RUNS times.
say "openssl genpkey RSA-2048: $STARTUP_RUNS times"
: >"$RAW/genpkey.tsv"
for ((r = 1; r <= STARTUP_RUNS; r++)); do
	t0=$(date +%s%N)
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out /dev/null 2>/dev/null
	t1=$(date +%s%N)
	printf 'genpkey\t%d\t%s\n' "$r" "$(calc "($t1 - $t0) / 1000000" 3)" >>"$RAW/genpkey.tsv"
done
# ... and the start of a process that only loads libcrypto: \`openssl version\`.
for ((r = 1; r <= STARTUP_RUNS; r++)); do
	t0=$(date +%s%N)
	openssl version >/dev/null
	t1=$(date +%s%N)
	printf 'version\t%d\t%s\n' "$r" "$(calc "($t1 - $t0) / 1000000" 3)" >>"$RAW/genpkey.tsv"
done
read -r G_MED G_MIN G_MAX _ < <(col "$RAW/genpkey.tsv" 3 genpkey | summ)
read -r V_MED V_MIN V_MAX _ < <(col "$RAW/genpkey.tsv" 3 version | summ)
{
	echo "| \`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out /dev/null\` ($STARTUP_RUNS runs, wall ms incl. process start) | median $(calc "$G_MED" 1) ms (min $(calc "$G_MIN" 1), max $(calc "$G_MAX" 1)) |"
	echo "| \`openssl version\` ($STARTUP_RUNS runs, wall ms: process start + loading libcrypto) | median $(calc "$V_MED" 1) ms (min $(calc "$V_MIN" 1), max $(calc "$V_MAX" 1)) |"
	echo
} >>"$MD"

# ---------------------------------------------------------------- 1. start-up
say "start-up: $STARTUP_RUNS rounds x 4 cases"
q() { printf '%q ' "$@"; }
C_MG="$(q "$MOCKIDP") -a 127.0.0.1 -p {port}"
C_NG="$(q node "$NODE_CLI") -a 127.0.0.1 -p {port}"
C_MJ="$(q "$MOCKIDP") -a 127.0.0.1 -p {port} --jwk $(q "$JWK_RS256")"
C_NJ="$(q node "$NODE_CLI") -a 127.0.0.1 -p {port} --jwk $(q "$JWK_RS256")"
: >"$RAW/startup.tsv"
bg_wait "$PYTHON" "$LIB" startup "$STARTUP_RUNS" "$RAW/startup.tsv" \
	"mockidp-gen=$C_MG" "node-gen=$C_NG" "mockidp-jwk=$C_MJ" "node-jwk=$C_NJ" ||
	die "start-up measurement failed"

read -r S_MG S_MG_MIN S_MG_MAX _ < <(col "$RAW/startup.tsv" 3 mockidp-gen | summ)
read -r S_NG S_NG_MIN S_NG_MAX _ < <(col "$RAW/startup.tsv" 3 node-gen | summ)
read -r S_MJ S_MJ_MIN S_MJ_MAX _ < <(col "$RAW/startup.tsv" 3 mockidp-jwk | summ)
read -r S_NJ S_NJ_MIN S_NJ_MAX _ < <(col "$RAW/startup.tsv" 3 node-jwk | summ)
R_GEN=$(calc "$S_NG / $S_MG" 1)
R_JWK=$(calc "$S_NJ / $S_MJ" 1)

{
	echo "### 1. Start-up: exec to first 200 on GET /jwks"
	echo
	echo "\`$PYTHON bench/benchlib.py startup $STARTUP_RUNS OUT <case>=<command>...\`: $STARTUP_RUNS rounds, each"
	echo "round runs the four cases once in this order (servers alternate); a fresh"
	echo "connection + \`GET /jwks\` is tried every 2 ms from just before exec; the server"
	echo "is stopped (SIGTERM) before the next one starts. Times in ms."
	echo
	echo "| case | command | median | min | max | node/mockidp (median) |"
	echo "|---|---|---:|---:|---:|---:|"
	row() { echo "| $1 | \`$2\` | $(calc "$3" 1) | $(calc "$4" 1) | $(calc "$5" 1) | $6 |"; }
	row "mockidp, generated RS256 key" "mockidp -a 127.0.0.1 -p PORT" "$S_MG" "$S_MG_MIN" "$S_MG_MAX" ""
	row "node, generated RS256 key" "node oauth2-mock-server.mjs -a 127.0.0.1 -p PORT" "$S_NG" "$S_NG_MIN" "$S_NG_MAX" "**$R_GEN×**"
	row "mockidp, \`--jwk\` RS256 file" "mockidp -a 127.0.0.1 -p PORT --jwk RS256.json" "$S_MJ" "$S_MJ_MIN" "$S_MJ_MAX" ""
	row "node, \`--jwk\` RS256 file" "node oauth2-mock-server.mjs -a 127.0.0.1 -p PORT --jwk RS256.json" "$S_NJ" "$S_NJ_MIN" "$S_NJ_MAX" "**$R_JWK×**"
	echo
	echo "Generated-key cases minus \`--jwk\` cases (≈ key generation and its"
	echo "effects): mockidp $(calc "$S_MG - $S_MJ" 1) ms, node $(calc "$S_NG - $S_NJ" 1) ms; the"
	echo "\`openssl genpkey\` yardstick above: $(calc "$G_MED" 1) ms; the \`openssl version\`"
	echo "yardstick (a process that loads libcrypto and exits): $(calc "$V_MED" 1) ms."
	echo
} >>"$MD"

# ---------------------------------------------------------------- 2. memory
say "memory: $MEM_RUNS rounds, $MEM_REQS tokens each"
printf 'server\tround\trss_idle_kb\trss_kb\thwm_kb\tanon_kb\tfile_kb\n' >"$RAW/mem.tsv"
for ((r = 1; r <= MEM_RUNS; r++)); do
	for s in mockidp node; do
		if [[ $s == mockidp ]]; then cmd=("${MOCK_CMD[@]}"); else cmd=("${NODE_CMD[@]}"); fi
		start_server "$RAW/mem-$s-$r.log" "${cmd[@]}" --jwk "$JWK_RS256"
		idle=$(rss_kb "$SRV_PID" VmRSS)
		bg_wait "$PYTHON" "$LIB" load "$SRV_PORT" "$MEM_REQS" >/dev/null ||
			die "$s: not all $MEM_REQS token requests succeeded"
		((r == 1)) && "$PYTHON" "$LIB" maps "$SRV_PID" 6 >"$RAW/maps-$s.txt"
		printf '%s\t%d\t%s\t%s\t%s\t%s\t%s\n' "$s" "$r" "$idle" \
			"$(rss_kb "$SRV_PID" VmRSS)" "$(rss_kb "$SRV_PID" VmHWM)" \
			"$(rss_kb "$SRV_PID" RssAnon)" "$(rss_kb "$SRV_PID" RssFile)" >>"$RAW/mem.tsv"
		stop_server "$SRV_PID"
	done
done
read -r M_I_IDLE _ < <(col "$RAW/mem.tsv" 3 mockidp | summ)
read -r M_I M_I_MIN M_I_MAX _ < <(col "$RAW/mem.tsv" 4 mockidp | summ)
read -r M_I_HWM _ < <(col "$RAW/mem.tsv" 5 mockidp | summ)
read -r M_N_IDLE _ < <(col "$RAW/mem.tsv" 3 node | summ)
read -r M_N M_N_MIN M_N_MAX _ < <(col "$RAW/mem.tsv" 4 node | summ)
read -r M_N_HWM _ < <(col "$RAW/mem.tsv" 5 node | summ)
read -r M_I_ANON _ < <(col "$RAW/mem.tsv" 6 mockidp | summ)
read -r M_I_FILE _ < <(col "$RAW/mem.tsv" 7 mockidp | summ)
read -r M_N_ANON _ < <(col "$RAW/mem.tsv" 6 node | summ)
read -r M_N_FILE _ < <(col "$RAW/mem.tsv" 7 node | summ)
R_MEM=$(calc "$M_N / $M_I" 1)
mib() { calc "$1 / 1024" 1; }

{
	echo "### 2. Resident memory after $MEM_REQS client_credentials tokens"
	echo
	echo "Each server started afresh with \`-a 127.0.0.1 -p 0 --jwk RS256.json\`, then"
	echo "\`$PYTHON bench/benchlib.py load PORT $MEM_REQS\` ($MEM_REQS POSTs of"
	echo "\`grant_type=client_credentials&scope=a\` on one keep-alive connection, all"
	echo "checked for 200 + access_token), then VmRSS/VmHWM from /proc/PID/status."
	echo "Median of $MEM_RUNS rounds (servers alternate), MiB."
	echo
	echo "| server | VmRSS idle | VmRSS after (min–max) | of which RssAnon | of which RssFile | VmHWM | node/mockidp |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	echo "| mockidp | $(mib "$M_I_IDLE") | $(mib "$M_I") ($(mib "$M_I_MIN")–$(mib "$M_I_MAX")) | $(mib "$M_I_ANON") | $(mib "$M_I_FILE") | $(mib "$M_I_HWM") | |"
	echo "| node | $(mib "$M_N_IDLE") | $(mib "$M_N") ($(mib "$M_N_MIN")–$(mib "$M_N_MAX")) | $(mib "$M_N_ANON") | $(mib "$M_N_FILE") | $(mib "$M_N_HWM") | **$R_MEM×** |"
	echo
	echo "RssFile is resident pages of mapped files (executable, shared libraries),"
	echo "mostly shared with other processes but counted in VmRSS. Largest mappings by"
	echo "Rss after the first round (\`benchlib.py maps PID 6\`, from /proc/PID/smaps):"
	echo
	echo "- mockidp: $(cat "$RAW/maps-mockidp.txt")"
	echo "- node: $(cat "$RAW/maps-node.txt")"
	echo
} >>"$MD"

# ---------------------------------------------------------------- 3. throughput
WRK_FMT="wrk -t$THREADS -c$CONNS -d$DURATION --latency -s bench/token.lua http://127.0.0.1:PORT/token"
printf 'alg\tserver\trun\ttok_s\tcpu_ms_tok\tcores\tp50_ms\tp99_ms\tok\tbad\terrors\twrk_cpu_s\tother_cores\n' \
	>"$RAW/tput.tsv"

# wrk_run PID PORT DURATION OUTFILE: one wrk run; sets B_* from the BENCH line
# and CPU_TICKS (server utime+stime during the run), BUSY_TICKS (all CPUs' busy
# ticks, /proc/stat), WINDOW_S (wall seconds between the two snapshots) and
# WRK_CPU (wrk's user+sys seconds).
wrk_run() {
	local pid=$1 port=$2 dur=$3 out=$4 c0 c1 b0 b1 n0 n1 kv line
	read -r c0 b0 n0 < <("$PYTHON" "$LIB" snap "$pid")
	local TIMEFORMAT='%U %S'
	{ time wrk -t"$THREADS" -c"$CONNS" -d"$dur" --latency -s "$LUA" \
		"http://127.0.0.1:$port/token" >"$out" 2>&1; } 2>"$out.time" ||
		die "wrk failed, see $out"
	read -r c1 b1 n1 < <("$PYTHON" "$LIB" snap "$pid") ||
		die "server $pid died during the run (see $out)"
	CPU_TICKS=$((c1 - c0))
	BUSY_TICKS=$((b1 - b0))
	WINDOW_S=$(calc "($n1 - $n0) / 1000000000" 6)
	WRK_CPU=$(awk '{ printf "%.2f", $1 + $2 }' "$out.time")
	line=$(grep '^BENCH ' "$out") || die "no BENCH line in $out"
	for kv in ${line#BENCH }; do
		printf -v "B_${kv%%=*}" '%s' "${kv#*=}"
	done
}

for alg in RS256 ES256; do
	if [[ $alg == RS256 ]]; then jwk=$JWK_RS256; else jwk=$JWK_ES256; fi
	say "throughput $alg: start both servers with the same --jwk, warm up $WARMUP each"
	start_server "$RAW/tput-$alg-mockidp.log" "${MOCK_CMD[@]}" --jwk "$jwk"
	PID_mockidp=$SRV_PID PORT_mockidp=$SRV_PORT
	start_server "$RAW/tput-$alg-node.log" "${NODE_CMD[@]}" --jwk "$jwk"
	PID_node=$SRV_PID PORT_node=$SRV_PORT
	for s in mockidp node; do
		pid_var=PID_$s port_var=PORT_$s
		wrk_run "${!pid_var}" "${!port_var}" "$WARMUP" "$RAW/warmup-$alg-$s.txt"
	done
	for ((r = 1; r <= RUNS; r++)); do
		for s in mockidp node; do
			pid_var=PID_$s port_var=PORT_$s
			say "throughput $alg run $r/$RUNS: $s ($DURATION)"
			out="$RAW/wrk-$alg-$s-$r.txt"
			wrk_run "${!pid_var}" "${!port_var}" "$DURATION" "$out"
			secs=$(calc "$B_duration_us / 1000000" 6)
			errs=$((B_err_connect + B_err_read + B_err_write + B_err_status + B_err_timeout))
			if ((B_ok > 0)); then
				cpu_tok=$(calc "$CPU_TICKS * 1000 / $CLK_TCK / $B_ok" 4)
			else
				cpu_tok=nan
			fi
			other=$(calc "(($BUSY_TICKS - $CPU_TICKS) / $CLK_TCK - $WRK_CPU) / $WINDOW_S" 2)
			printf '%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$alg" "$s" "$r" \
				"$(calc "$B_ok / $secs" 1)" "$cpu_tok" \
				"$(calc "$CPU_TICKS / $CLK_TCK / $WINDOW_S" 2)" \
				"$(calc "$B_p50_us / 1000" 2)" "$(calc "$B_p99_us / 1000" 2)" \
				"$B_ok" "$B_bad" "$errs" "$WRK_CPU" "$other" >>"$RAW/tput.tsv"
			((B_bad == 0 && errs == 0)) ||
				say "WARNING: $s $alg run $r: $B_bad non-200 responses, $errs socket errors"
		done
	done
	stop_server "$PID_node"
	stop_server "$PID_mockidp"
done

# T_<alg>_<server>_<metric>: medians over RUNS; range of tokens/s; sums of errors
for alg in RS256 ES256; do
	for s in mockidp node; do
		i=4
		for m in tok cpu cores p50 p99; do
			read -r v _ < <(col "$RAW/tput.tsv" $i "$alg" "$s" | summ)
			printf -v "T_${alg}_${s}_$m" '%s' "$v"
			i=$((i + 1))
		done
		read -r _ lo hi _ < <(col "$RAW/tput.tsv" 4 "$alg" "$s" | summ)
		printf -v "T_${alg}_${s}_range" '%s–%s' "$(calc "$lo" 0)" "$(calc "$hi" 0)"
		printf -v "T_${alg}_${s}_bad" '%s' "$(col "$RAW/tput.tsv" 10 "$alg" "$s" | awk '{ t += $1 } END { print t + 0 }')"
		printf -v "T_${alg}_${s}_err" '%s' "$(col "$RAW/tput.tsv" 11 "$alg" "$s" | awk '{ t += $1 } END { print t + 0 }')"
		read -r v _ < <(col "$RAW/tput.tsv" 12 "$alg" "$s" | summ)
		printf -v "T_${alg}_${s}_wrk" '%s' "$v"
		read -r v _ < <(col "$RAW/tput.tsv" 13 "$alg" "$s" | summ)
		printf -v "T_${alg}_${s}_other" '%s' "$v"
	done
done
tv() { local n="T_$1_$2_$3"; printf '%s' "${!n}"; }

{
	echo "### 3. client_credentials tokens/s under wrk"
	echo
	echo "Both servers run at once with the same \`--jwk\` file, each warmed up with"
	echo "$WARMUP of the same load, then measured alternately (mockidp, node, ...), $RUNS"
	echo "runs each: \`$WRK_FMT\`"
	echo "(bench/token.lua POSTs \`grant_type=client_credentials&scope=a\` with"
	echo "\`Content-Type: application/x-www-form-urlencoded\` and counts a response as ok"
	echo "only if it is a 200 carrying an access_token). tokens/s = ok responses /"
	echo "wrk's duration. CPU/token = server utime+stime (/proc/PID/stat, all threads)"
	echo "over the run / ok responses. \"cores\" = server CPU seconds per wall second."
	echo "wrk itself runs on the same $(nproc) cores (its CPU seconds per run are shown);"
	echo "\"others\" = CPU cores busy with anything but the server and wrk during the"
	echo "run (/proc/stat), i.e. how much other load shared the machine."
	echo "Medians of $RUNS runs."
	echo
	echo "| alg | server | tokens/s (min–max) | CPU ms/token | cores | p50 ms | p99 ms | non-200 | socket errors | wrk CPU s | others |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for alg in RS256 ES256; do
		for s in mockidp node; do
			echo "| $alg | $s | $(calc "$(tv $alg $s tok)" 0) ($(tv $alg $s range)) | $(calc "$(tv $alg $s cpu)" 3) | $(calc "$(tv $alg $s cores)" 2) | $(calc "$(tv $alg $s p50)" 1) | $(calc "$(tv $alg $s p99)" 1) | $(tv $alg $s bad) | $(tv $alg $s err) | $(calc "$(tv $alg $s wrk)" 2) | $(calc "$(tv $alg $s other)" 2) |"
		done
	done
	echo
} >>"$MD"

# ---------------------------------------------------------------- targets
verdict() { awk "BEGIN { exit !($1) }" && echo met || echo "**missed**"; }
R_RSA_SPEED=$(calc "$T_RS256_mockidp_tok / $SPEED_RSA" 2)
R_RS_NODE=$(calc "$T_RS256_mockidp_tok / $T_RS256_node_tok" 2)
R_CPU_RS=$(calc "$T_RS256_mockidp_cpu / $T_RS256_node_cpu" 2)
R_CPU_ES=$(calc "$T_ES256_mockidp_cpu / $T_ES256_node_cpu" 2)
R_ES=$(calc "$T_ES256_mockidp_tok / $T_ES256_node_tok" 2)
ALL_OK=$(verdict "$T_RS256_mockidp_bad + $T_RS256_mockidp_err + $T_RS256_node_bad + $T_RS256_node_err + $T_ES256_mockidp_bad + $T_ES256_mockidp_err + $T_ES256_node_bad + $T_ES256_node_err == 0")
{
	echo "### Targets"
	echo
	echo "| target | measured | result |"
	echo "|---|---|---|"
	echo "| start-up, generated key: mockidp ≤ 1/5 of node | node/mockidp = $R_GEN× ($(calc "$S_NG" 1) / $(calc "$S_MG" 1) ms) | $(verdict "$R_GEN >= 5") |"
	echo "| start-up, \`--jwk\` file: mockidp ≤ 1/20 of node | node/mockidp = $R_JWK× ($(calc "$S_NJ" 1) / $(calc "$S_MJ" 1) ms) | $(verdict "$R_JWK >= 20") |"
	echo "| VmRSS after $MEM_REQS tokens: mockidp ≤ 1/10 of node | node/mockidp = $R_MEM× ($(mib "$M_N") / $(mib "$M_I") MiB) | $(verdict "$R_MEM >= 10") |"
	echo "| RS256 tokens/s ≥ 90% of one-core RSA-2048 sign/s, or above node's | $(calc "$T_RS256_mockidp_tok" 0)/s = $R_RSA_SPEED × $SPEED_RSA sign/s; $R_RS_NODE × node's $(calc "$T_RS256_node_tok" 0)/s | $(verdict "$R_RSA_SPEED >= 0.9 || $R_RS_NODE > 1") |"
	echo "| RS256 CPU/token: mockidp ≤ 1/2 of node | mockidp/node = $R_CPU_RS ($(calc "$T_RS256_mockidp_cpu" 3) / $(calc "$T_RS256_node_cpu" 3) ms) | $(verdict "$R_CPU_RS <= 0.5") |"
	echo "| ES256 CPU/token: mockidp ≤ 1/2 of node | mockidp/node = $R_CPU_ES ($(calc "$T_ES256_mockidp_cpu" 3) / $(calc "$T_ES256_node_cpu" 3) ms) | $(verdict "$R_CPU_ES <= 0.5") |"
	echo "| ES256 tokens/s: mockidp ≥ 3× node | $R_ES× ($(calc "$T_ES256_mockidp_tok" 0) / $(calc "$T_ES256_node_tok" 0) tokens/s) | $(verdict "$R_ES >= 3") |"
	echo "| every wrk response a 200 with a token, no socket errors | | $ALL_OK |"
	echo
	echo "Yardstick: one RSA-2048 signature costs $(calc "1000 / $SPEED_RSA" 3) ms and one"
	echo "ECDSA P-256 signature $(calc "1000 / $SPEED_EC" 4) ms of one core (\`openssl speed\`), against"
	echo "mockidp's $(calc "$T_RS256_mockidp_cpu" 3) and $(calc "$T_ES256_mockidp_cpu" 3) ms of CPU per token: at that cost one"
	echo "free core would give at most $(calc "1000 / $T_RS256_mockidp_cpu" 0) RS256 tokens/s"
	echo "($(calc "100000 / $T_RS256_mockidp_cpu / $SPEED_RSA" 0)% of the one-core sign/s) and"
	echo "$(calc "1000 / $T_ES256_mockidp_cpu" 0) ES256 tokens/s."
	echo
	echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg). Raw data: \`${RAW#"$ROOT"/}/\`."
} >>"$MD"

cat "$MD"
say "wrote $MD"
