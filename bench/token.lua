-- token.lua: wrk script for bench/run.sh. Every request is a client_credentials
-- POST /token; a response counts as ok only when it is a 200 that carries an
-- access_token. done() prints one machine-readable "BENCH k=v ..." line that
-- run.sh parses (latencies in microseconds, duration in microseconds).

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=client_credentials&scope=a"

local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	ok = 0
	bad = 0
end

function response(status, headers, body)
	if status == 200 and string.find(body, '"access_token"', 1, true) then
		ok = ok + 1
	else
		bad = bad + 1
	end
end

function done(summary, latency, requests)
	local o, b = 0, 0
	for _, t in ipairs(threads) do
		o = o + t:get("ok")
		b = b + t:get("bad")
	end
	local e = summary.errors
	io.write(string.format(
	    "BENCH ok=%d bad=%d requests=%d duration_us=%d p50_us=%d p99_us=%d " ..
	    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
	    o, b, summary.requests, summary.duration,
	    latency:percentile(50), latency:percentile(99),
	    e.connect, e.read, e.write, e.status, e.timeout))
end
