-- post.lua: wrk script for bench/idp/run-flows.sh: POST a form with client_secret_basic
--
--   wrk ... -s post.lua URL -- BASIC_B64 BODY MARKER
--
-- A response counts as ok only when it is a 2xx whose body contains MARKER (e.g.
-- '"active":true' for introspection). done() prints the same "BENCH k=v ..." line as
-- req.lua (latencies and duration in microseconds).

local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	ok = 0
	bad = 0
	non2xx = 0
	wrk.method = "POST"
	wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
	wrk.headers["Authorization"] = "Basic " .. args[1]
	wrk.body = args[2]
	marker = args[3]
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
