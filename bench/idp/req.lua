-- req.lua: wrk script for bench/idp/run.sh, one script for every case:
--
--   wrk ... -s req.lua URL -- token BASIC_B64 BODY   POST /token, client_secret_basic
--   wrk ... -s req.lua URL -- get MARKER             GET URL
--
-- A response counts as ok only when it is a 2xx whose body contains the marker
-- ("access_token" for token requests; e.g. "keys" or "issuer" for GETs); anything
-- else (non-2xx, or a 2xx without the marker) counts as bad. done() prints one
-- machine-readable "BENCH k=v ..." line that run.sh parses (latencies and duration
-- in microseconds).

local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	ok = 0
	bad = 0
	non2xx = 0
	if args[1] == "token" then
		wrk.method = "POST"
		wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
		wrk.headers["Authorization"] = "Basic " .. args[2]
		wrk.body = args[3]
		marker = '"access_token"'
	elseif args[1] == "get" then
		wrk.method = "GET"
		marker = args[2]
	else
		error("req.lua: first argument must be token or get")
	end
end

function response(status, headers, body)
	if status >= 200 and status < 300 and string.find(body, marker, 1, true) then
		ok = ok + 1
	else
		bad = bad + 1
		if status < 200 or status >= 300 then
			non2xx = non2xx + 1
		end
	end
end

function done(summary, latency, requests)
	local o, b, n = 0, 0, 0
	for _, t in ipairs(threads) do
		o = o + t:get("ok")
		b = b + t:get("bad")
		n = n + t:get("non2xx")
	end
	local e = summary.errors
	io.write(string.format(
	    "BENCH ok=%d bad=%d non2xx=%d requests=%d duration_us=%d p50_us=%d p99_us=%d " ..
	    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
	    o, b, n, summary.requests, summary.duration,
	    latency:percentile(50), latency:percentile(99),
	    e.connect, e.read, e.write, e.status, e.timeout))
end
