#!/usr/bin/env node
// Differential test: sends byte-identical HTTP requests to mockidp and to the reference
// oauth2-mock-server 9.3.0 and compares the answers field by field.
//
// The oracle is /work/shared/reference/oauth2-mock-server.md (the section numbers quoted
// below are its sections).  Random values (codes, refresh tokens, key ids, moduli, JWTs) are
// compared by shape; every JWT is decoded and checked claim by claim, and its signature is
// verified against the issuing server's own JWKS with jose here and with PyJWT
// (verify_pyjwt.py, run with /usr/bin/python3) at the end.
//
// usage: node difftest.mjs <mockidp-binary> <tests-dir>
//   <tests-dir> holds node_modules/oauth2-mock-server (npm install in tests/).
// environment:
//   DIFFTEST_MOCK_IS_REF=1  the "mock" side is a second reference server (self-test of this
//                           harness: everything must pass)
//   DIFFTEST_FILTER=<re>    run only the cases whose name matches
//   DIFFTEST_VERBOSE=1      print both raw responses of every failing exchange
//
// Output: one "ok - <case>" / "not ok - <case>: <first difference>" line per case, further
// differences as "#   " lines under it, "# skip" lines for documented deviations, and a last
// line "N passed, M failed".  Exit status 1 if anything failed.
//
// Only processes started here are ever signalled, by their PID, on every exit path.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const MOCK_BIN = process.argv[2];
const TESTS_DIR = process.argv[3] ? path.resolve(process.argv[3]) : undefined;
const MOCK_IS_REF = process.env.DIFFTEST_MOCK_IS_REF === '1';
const FILTER = process.env.DIFFTEST_FILTER ? new RegExp(process.env.DIFFTEST_FILTER) : null;
const VERBOSE = process.env.DIFFTEST_VERBOSE === '1';
const PYTHON = '/usr/bin/python3';
const START_TIMEOUT_MS = 10000;
const REQUEST_TIMEOUT_MS = 10000;

if (!TESTS_DIR || (!MOCK_BIN && !MOCK_IS_REF)) {
	console.error('usage: node difftest.mjs <mockidp-binary> <tests-dir>');
	process.exit(2);
}
const REF_CLI = path.join(TESTS_DIR, 'node_modules/oauth2-mock-server/dist/oauth2-mock-server.mjs');
const PYJWT_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'verify_pyjwt.py');

// jose from <tests-dir>/node_modules, the same install as the reference server.
let jose;
try {
	jose = await import(pathToFileURL(createRequire(path.join(path.resolve(TESTS_DIR), 'package.json')).resolve('jose')).href);
} catch (e) {
	console.error(`difftest: cannot load jose (run npm install in ${TESTS_DIR}): ${e.message}`);
	process.exit(2);
}

// ------------------------------------------------------------------------------------------
// Child processes.  `children` holds every process we started that has not exited yet.

const children = new Set();

function killChildren(sig) {
	for (const c of children) {
		try {
			process.kill(c.pid, sig);
		} catch {
			// already gone
		}
	}
}
process.on('exit', () => killChildren('SIGKILL'));
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
	process.on(sig, () => {
		killChildren('SIGKILL');
		process.exit(130);
	});
}
process.on('uncaughtException', (e) => {
	console.log(`not ok - harness: uncaught exception: ${e && e.stack ? e.stack : e}`);
	process.exit(1);
});
process.on('unhandledRejection', (e) => {
	console.log(`not ok - harness: unhandled rejection: ${e && e.stack ? e.stack : e}`);
	process.exit(1);
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Runs a program to completion (or kills it after timeoutMs); returns {code, signal, stdout,
// stderr, timedOut}.
function runProgram(cmd, args, timeoutMs = 10000) {
	return new Promise((resolve) => {
		const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd: os.tmpdir() });
		children.add(child);
		let stdout = '', stderr = '', timedOut = false;
		child.stdout.on('data', (d) => (stdout += d));
		child.stderr.on('data', (d) => (stderr += d));
		const timer = setTimeout(() => {
			timedOut = true;
			try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
		}, timeoutMs);
		child.on('error', (e) => {
			clearTimeout(timer);
			children.delete(child);
			resolve({ code: null, signal: null, stdout, stderr: stderr + String(e), timedOut });
		});
		child.on('close', (code, signal) => {
			clearTimeout(timer);
			children.delete(child);
			resolve({ code, signal, stdout, stderr, timedOut });
		});
		child.stdin.end();
	});
}

function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.on('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

// A server under test: {label, child, pid, port, issuer, stdout, stderr, exited}.
class StartError extends Error {}

// Starts cmd args..., waits for the "listening" stdout line (when port is 0) and then for
// GET /jwks to answer 200.  Throws StartError with the server's output on failure or after
// START_TIMEOUT_MS.  The caller stops the server with stopServer().
async function startServer(label, cmd, args, { port = 0, issuerSlash = false, tls = false, cwd = os.tmpdir() } = {}) {
	const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd });
	children.add(child);
	const srv = { label, child, pid: child.pid, port: 0, connectHost: '127.0.0.1', tls, issuer: '', stdout: '', stderr: '', exited: null, cmdline: [cmd, ...args].join(' ') };
	child.stdout.on('data', (d) => (srv.stdout += d));
	child.stderr.on('data', (d) => (srv.stderr += d));
	child.on('error', (e) => {
		srv.stderr += `spawn error: ${e.message}\n`;
		srv.exited = { code: null, signal: null };
		children.delete(child);
	});
	child.on('exit', (code, signal) => {
		srv.exited = { code, signal };
		children.delete(child);
	});
	const deadline = Date.now() + START_TIMEOUT_MS;
	const fail = async (why) => {
		await stopServer(srv);
		throw new StartError(`${label} (${srv.cmdline}): ${why}\n--- stdout:\n${srv.stdout}--- stderr:\n${srv.stderr}`);
	};
	if (port === 0) {
		for (;;) {
			const m = /OAuth 2 server listening on https?:\/\/(\[[^\]]*\]|[^:/\s]+):(\d+)/.exec(srv.stdout);
			if (m) {
				srv.port = Number(m[2]);
				const h = m[1].replace(/^\[|\]$/g, '');
				srv.connectHost = h === '0.0.0.0' ? '127.0.0.1' : h === '::' ? '::1' : h;
				break;
			}
			if (srv.exited) return fail(`exited (code ${srv.exited.code}, signal ${srv.exited.signal}) before printing "OAuth 2 server listening on http://ADDRESS:PORT"`);
			if (Date.now() > deadline) return fail(`no "OAuth 2 server listening on http://ADDRESS:PORT" line on stdout within ${START_TIMEOUT_MS} ms (stdout not flushed?)`);
			await sleep(20);
		}
	} else {
		srv.port = port;
	}
	srv.issuer = `${tls ? 'https' : 'http'}://localhost:${srv.port}${issuerSlash ? '/' : ''}`;
	for (;;) {
		if (srv.exited) return fail(`exited (code ${srv.exited.code}, signal ${srv.exited.signal}) before GET /jwks answered`);
		try {
			const r = await request(srv, { path: '/jwks' }, 1000);
			if (r.status === 200) break;
		} catch {
			// not ready yet
		}
		if (Date.now() > deadline) return fail(`GET /jwks did not answer 200 within ${START_TIMEOUT_MS} ms`);
		await sleep(50);
	}
	return srv;
}

// Stops a server we started: SIGTERM (or sig), then SIGKILL after 3 s.  Never throws.
async function stopServer(srv, sig = 'SIGTERM', graceMs = 3000) {
	if (!srv || srv.exited) return;
	try { process.kill(srv.pid, sig); } catch { /* gone */ }
	const deadline = Date.now() + graceMs;
	while (!srv.exited && Date.now() < deadline) await sleep(20);
	if (!srv.exited) {
		try { process.kill(srv.pid, 'SIGKILL'); } catch { /* gone */ }
		while (!srv.exited) await sleep(20);
	}
}

// ------------------------------------------------------------------------------------------
// HTTP.  Raw http.request: we set every header ourselves (plus Host and Connection: close,
// which Node adds), so both servers get the same bytes except for the port in Host.

// spec: {method, path, headers, body | chunks}.  `chunks` (array of strings) are written one
// by one with Transfer-Encoding: chunked.  agent: an http.Agent to reuse connections
// (default: a fresh connection, Connection: close).  Resolves {status, headers, rawHeaders,
// body (Buffer), text, reused (socket reused from the agent)}.
function request(srv, spec, timeoutMs = REQUEST_TIMEOUT_MS, agent = false) {
	const method = spec.method ?? 'GET';
	const headers = { ...(spec.headers ?? {}) };
	let body = spec.body;
	if (body !== undefined && body !== null && !Buffer.isBuffer(body)) body = Buffer.from(body, 'utf8');
	const hasHeader = (n) => Object.keys(headers).some((h) => h.toLowerCase() === n);
	if (!spec.chunks && (body || method === 'POST' || method === 'PUT' || method === 'PATCH')) {
		if (!hasHeader('content-length')) headers['Content-Length'] = body ? body.length : 0;
	}
	return new Promise((resolve, reject) => {
		const req = (srv.tls ? https : http).request({ host: srv.connectHost, port: srv.port, method, path: spec.path, headers, agent, rejectUnauthorized: false }, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => {
				const buf = Buffer.concat(chunks);
				resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, body: buf, text: buf.toString('utf8'), reused: req.reusedSocket });
			});
			res.on('error', reject);
		});
		req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
		req.on('error', reject);
		if (spec.chunks) for (const c of spec.chunks) req.write(c);
		else if (body) req.write(body);
		req.end();
	});
}

// ------------------------------------------------------------------------------------------
// Comparison helpers.  A "side" is {name: 'ref'|'mock', srv, kids: [kid...]}; differences
// are pushed as strings onto a case's `D` array.

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const B64U = /^[A-Za-z0-9_-]+$/;

function show(v) {
	let s;
	if (v === undefined) s = '(absent)';
	else if (Buffer.isBuffer(v)) s = JSON.stringify(v.toString('utf8'));
	else s = JSON.stringify(v);
	return s.length > 240 ? `${s.slice(0, 240)}…(${s.length} chars)` : s;
}
function differ(D, what, a, b) {
	D.push(`${what} (ref=${show(a)} mock=${show(b)})`);
}
function jtype(v) {
	if (v === null) return 'null';
	if (Array.isArray(v)) return 'array';
	return typeof v;
}
function deepEqual(a, b) {
	return JSON.stringify(a) === JSON.stringify(b);
}
function b64uJson(s) {
	return JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
}
const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x), 'utf8').toString('base64url');

// First position where two strings differ, shown with some context on both sides.
function rawDiff(D, what, a, b) {
	let i = 0;
	while (i < a.length && i < b.length && a[i] === b[i]) i++;
	const from = Math.max(0, i - 30);
	D.push(`${what} differs at char ${i} (ref=${show(a.slice(from, i + 60))} mock=${show(b.slice(from, i + 60))})`);
}

const NOT_COMPARED = new Set(['connection', 'keep-alive', 'transfer-encoding']);
const headerNameDiffs = new Map(); // "mock lacks header 'date'" -> [case names]
let currentCase = '';

const COMPARED_HEADERS = ['content-type', 'access-control-allow-origin', 'access-control-allow-methods',
	'access-control-allow-headers', 'cache-control', 'pragma'];

// Compares two responses.  opts: {status, detail, ctype, cache (bool), randomJwks (bool),
// sideChecks: (res, side, D) => void, what: prefix}.  The expectations in opts are checked
// on the reference too, so a harness that misreads the spec fails in ref-vs-ref mode.
async function compareResponses(D, r, m, sides, opts = {}) {
	const pre = opts.what ? `${opts.what}: ` : '';
	const [R, M] = sides;
	if (opts.status !== undefined) {
		for (const [res, side] of [[r, R], [m, M]]) {
			if (res.status !== opts.status) D.push(`${pre}${side.name}: status ${res.status}, spec says ${opts.status}${side.name === 'ref' ? ' (harness/spec mismatch)' : ''}`);
		}
	}
	if (r.status !== m.status) differ(D, `${pre}status`, r.status, m.status);
	for (const h of COMPARED_HEADERS) {
		if (r.headers[h] !== m.headers[h]) differ(D, `${pre}header ${h}`, r.headers[h], m.headers[h]);
	}
	if (opts.cache !== undefined) {
		for (const [res, side] of [[r, R], [m, M]]) {
			const has = res.headers['cache-control'] === 'no-store' && res.headers.pragma === 'no-cache';
			const none = res.headers['cache-control'] === undefined && res.headers.pragma === undefined;
			if (opts.cache ? !has : !none) D.push(`${pre}${side.name}: Cache-Control/Pragma ${opts.cache ? 'missing' : 'present'}, spec says ${opts.cache ? 'no-store/no-cache' : 'none'}`);
		}
	}
	// Content-Length: same presence; when present it must match the body actually sent.
	if ((r.headers['content-length'] === undefined) !== (m.headers['content-length'] === undefined)) {
		differ(D, `${pre}header content-length presence`, r.headers['content-length'], m.headers['content-length']);
	}
	for (const [res, side] of [[r, R], [m, M]]) {
		const cl = res.headers['content-length'];
		if (cl !== undefined && Number(cl) !== res.body.length) D.push(`${pre}${side.name}: Content-Length ${cl} but ${res.body.length} body bytes`);
	}
	// Duplicated header lines.
	const dups = (res) => {
		const seen = new Map();
		for (let i = 0; i < res.rawHeaders.length; i += 2) {
			const k = res.rawHeaders[i].toLowerCase();
			seen.set(k, (seen.get(k) ?? 0) + 1);
		}
		return [...seen].filter(([, n]) => n > 1).map(([k]) => k).sort().join(',');
	};
	if (dups(r) !== dups(m)) differ(D, `${pre}repeated header lines`, dups(r), dups(m));
	// Header names, aggregated over the whole run into one case at the end.
	const names = (res) => new Set(Object.keys(res.headers).filter((h) => !NOT_COMPARED.has(h)));
	const nr = names(r), nm = names(m);
	const note = (what) => {
		if (!headerNameDiffs.has(what)) headerNameDiffs.set(what, []);
		headerNameDiffs.get(what).push(currentCase);
	};
	for (const h of nr) if (!nm.has(h)) note(`mock lacks header '${h}'`);
	for (const h of nm) if (!nr.has(h)) note(`mock adds header '${h}'`);

	compareLocation(D, pre, r.headers.location, m.headers.location);

	// Body.
	if (r.body.length === 0 || m.body.length === 0) {
		if (r.body.length !== m.body.length) differ(D, `${pre}body`, r.text, m.text);
	} else if (/json/.test(r.headers['content-type'] ?? '')) {
		let jr, jm;
		try { jr = JSON.parse(r.text); } catch { D.push(`${pre}ref body is not JSON: ${show(r.text)}`); }
		try { jm = JSON.parse(m.text); } catch { D.push(`${pre}mock body is not JSON: ${show(m.text)}`); }
		if (jr !== undefined && jm !== undefined) {
			const before = D.length;
			const st = { D, pre, special: [], randomJwks: opts.randomJwks };
			walk(jr, jm, '$', st);
			const rnd = [[], []];
			for (const sp of st.special) {
				if (sp.kind === 'jwt') await compareJwt(D, `${pre}${sp.path}`, sp.a, sp.b, sides);
				else checkRandomShape(D, `${pre}${sp.path}`, sp.kind, sp.a, sp.b);
				rnd[0].push([sp.a, sp.kind]);
				rnd[1].push([sp.b, sp.kind]);
			}
			// Raw text once random values and the own issuer are masked: catches whitespace,
			// escaping and number formatting differences.
			if (D.length === before) {
				const norm = (text, side, list) => {
					let t = text.split(side.srv.issuer.replace(/\/$/, '')).join('<ISSUER>');
					for (const [v, kind] of list) if (typeof v === 'string' && v) t = t.split(v).join(`<${kind}>`);
					return t;
				};
				const a = norm(r.text, R, rnd[0]), b = norm(m.text, M, rnd[1]);
				if (a !== b) rawDiff(D, `${pre}raw JSON body (issuer and random values masked)`, a, b);
			}
		}
	} else {
		const a = r.text.split(R.srv.issuer).join('<ISSUER>'), b = m.text.split(M.srv.issuer).join('<ISSUER>');
		if (a !== b) differ(D, `${pre}body`, a, b);
	}
	if (opts.detail !== undefined) {
		for (const [res, side] of [[r, R], [m, M]]) {
			let detail;
			try { detail = JSON.parse(res.text).detail; } catch { /* reported above */ }
			if (detail !== opts.detail) D.push(`${pre}${side.name}: detail ${show(detail)}, spec says ${show(opts.detail)}`);
		}
	}
	if (opts.ctype !== undefined) {
		for (const [res, side] of [[r, R], [m, M]]) {
			if (res.headers['content-type'] !== (opts.ctype ?? undefined)) D.push(`${pre}${side.name}: Content-Type ${show(res.headers['content-type'])}, spec says ${show(opts.ctype ?? undefined)}`);
		}
	}
	if (opts.sideChecks) {
		opts.sideChecks(r, R, D);
		opts.sideChecks(m, M, D);
	}
	if (VERBOSE && D.length) {
		for (const [res, side] of [[r, R], [m, M]]) console.log(`# ${side.name} ${res.status} ${JSON.stringify(res.rawHeaders)} ${show(res.text)}`);
	}
}

// Which JSON members hold random values, by path.
function classify(p, st) {
	const last = p.slice(p.lastIndexOf('.') + 1);
	if (last === 'access_token' || last === 'id_token') return 'jwt';
	if (last === 'refresh_token') return 'uuid';
	if (st.randomJwks) {
		if (/^\$\.keys\[\d+\]\.kid$/.test(p)) return 'kid';
		if (/^\$\.keys\[\d+\]\.n$/.test(p)) return 'n';
	}
	return null;
}

function walk(a, b, p, st) {
	const kind = classify(p, st);
	if (kind && typeof a === 'string' && typeof b === 'string') {
		st.special.push({ kind, path: p, a, b });
		return;
	}
	const ta = jtype(a), tb = jtype(b);
	if (ta !== tb) return differ(st.D, `${st.pre}${p}: JSON type ${ta} vs ${tb}`, a, b);
	if (ta === 'object') {
		const ka = Object.keys(a), kb = Object.keys(b);
		if (ka.join(',') !== kb.join(',')) namesDiff(st.D, `${st.pre}${p}: member names`, ka, kb);
		for (const k of ka) if (k in b) walk(a[k], b[k], `${p}.${k}`, st);
	} else if (ta === 'array') {
		if (a.length !== b.length) differ(st.D, `${st.pre}${p}: array length`, a, b);
		for (let i = 0; i < Math.min(a.length, b.length); i++) walk(a[i], b[i], `${p}[${i}]`, st);
	} else if (ta === 'string') {
		if (a !== b && normIssuer(a, 0) !== normIssuer(b, 1)) differ(st.D, `${st.pre}${p}`, a, b);
	} else if (a !== b) {
		differ(st.D, `${st.pre}${p}`, a, b);
	}
}
// s with side i's own issuer (without a trailing slash) replaced by <ISSUER>.
function normIssuer(s, i) {
	const iss = sidesNow[i].srv.issuer.replace(/\/$/, '');
	return s.split(iss).join('<ISSUER>');
}

// Reports two lists of names that differ: what is missing/extra, or only the order.
function namesDiff(D, what, a, b) {
	const missing = a.filter((x) => !b.includes(x)), extra = b.filter((x) => !a.includes(x));
	if (missing.length || extra.length) {
		D.push(`${what}: ${missing.length ? `mock lacks ${show(missing)}` : ''}${missing.length && extra.length ? ', ' : ''}${extra.length ? `mock adds ${show(extra)}` : ''} (ref=${show(a)} mock=${show(b)})`);
	} else {
		differ(D, `${what}: order`, a, b);
	}
}

function checkRandomShape(D, where, kind, a, b) {
	for (const [v, name] of [[a, 'ref'], [b, 'mock']]) {
		let ok;
		let want;
		if (kind === 'uuid') { ok = UUID4.test(v); want = 'lowercase UUID v4'; }
		else if (kind === 'kid') { ok = /^[0-9a-f]{80}$/.test(v); want = '80 lowercase hex chars'; }
		else if (kind === 'n') {
			const bytes = B64U.test(v) ? Buffer.from(v, 'base64url') : Buffer.alloc(0);
			ok = bytes.length === 256 && bytes[0] >= 0x80;
			want = 'base64url (no padding) of a 256-byte modulus with the top bit set';
		}
		if (!ok) D.push(`${where}: ${name} value ${show(v)} is not ${want}`);
	}
}

// Decodes a compact JWS without verifying it: {header, payload} or {error}.
function decodeJwt(tok) {
	if (typeof tok !== 'string') return { error: `not a string: ${show(tok)}` };
	const parts = tok.split('.');
	if (parts.length !== 3) return { error: `${parts.length} segments` };
	if (!parts.every((s) => B64U.test(s))) return { error: 'segment not in the base64url alphabet (padding?)' };
	try {
		const header = b64uJson(parts[0]), payload = b64uJson(parts[1]);
		return { header, payload };
	} catch (e) {
		return { error: `undecodable: ${e.message}` };
	}
}

const pyjwtQueue = { ref: [], mock: [] };
const jwksSets = new Map(); // jwks uri -> jose remote set

// Compares two JWTs (the same request's token from each side): header and claim names in
// order, types, deterministic values, iss = own issuer, exp/nbf relations, iat near now, and
// the signature against the server's own JWKS.
async function compareJwt(D, where, ta, tb, sides) {
	const da = decodeJwt(ta), db = decodeJwt(tb);
	if (da.error) D.push(`${where}: ref token ${da.error}`);
	if (db.error) D.push(`${where}: mock token ${db.error}`);
	if (da.error || db.error) return;
	const before = D.length;
	const hk = [Object.keys(da.header), Object.keys(db.header)];
	if (hk[0].join() !== hk[1].join()) namesDiff(D, `${where} header member names`, hk[0], hk[1]);
	for (const k of ['typ', 'alg']) if (da.header[k] !== db.header[k]) differ(D, `${where} header ${k}`, da.header[k], db.header[k]);
	const pk = [Object.keys(da.payload), Object.keys(db.payload)];
	if (pk[0].join() !== pk[1].join()) namesDiff(D, `${where} claim names`, pk[0], pk[1]);
	for (const k of pk[0]) {
		if (!(k in db.payload) || ['iss', 'iat', 'exp', 'nbf'].includes(k)) continue;
		const va = da.payload[k], vb = db.payload[k];
		if (jtype(va) !== jtype(vb)) differ(D, `${where} claim ${k} JSON type ${jtype(va)} vs ${jtype(vb)}`, va, vb);
		else if (!deepEqual(va, vb)) differ(D, `${where} claim ${k}`, va, vb);
	}
	// The JSON text inside the segments, random values masked: catches spacing/escaping.
	const rawText = (tok, side) => {
		const [h, p] = tok.split('.').map((x) => Buffer.from(x, 'base64url').toString('utf8'));
		const kid = decodeJwt(tok).header.kid;
		return [typeof kid === 'string' && kid ? h.split(kid).join('<KID>') : h,
			p.split(side.srv.issuer).join('<ISSUER>').replace(/"(iat|exp|nbf)":\d+/g, '"$1":<N>')];
	};
	if (D.length === before) {
		const [ha, pa] = rawText(ta, sides[0]), [hb, pb] = rawText(tb, sides[1]);
		if (ha !== hb) rawDiff(D, `${where} raw header JSON (kid masked)`, ha, hb);
		if (pa !== pb) rawDiff(D, `${where} raw payload JSON (iss/iat/exp/nbf masked)`, pa, pb);
	}
	const now = Date.now() / 1000;
	for (const [d, side, tok] of [[da, sides[0], ta], [db, sides[1], tb]]) {
		const { header: h, payload: p } = d;
		const s = `${where}: ${side.name}`;
		if (h.typ !== 'JWT') D.push(`${s} header typ ${show(h.typ)}, spec says "JWT"`);
		if (!side.kids.includes(h.kid)) D.push(`${s} header kid ${show(h.kid)} is not in its own JWKS ${show(side.kids)}`);
		if (p.iss !== side.srv.issuer) D.push(`${s} iss ${show(p.iss)}, want its own issuer ${show(side.srv.issuer)}`);
		for (const k of ['iat', 'exp', 'nbf']) if (!Number.isInteger(p[k])) D.push(`${s} ${k} ${show(p[k])} is not an integer`);
		if (p.exp - p.iat !== 3600) D.push(`${s} exp - iat = ${p.exp - p.iat}, spec says 3600`);
		if (p.nbf - p.iat !== -10) D.push(`${s} nbf - iat = ${p.nbf - p.iat}, spec says -10`);
		if (!(Math.abs(p.iat - now) <= 5)) D.push(`${s} iat ${p.iat} is ${Math.round(p.iat - now)} s from now`);
		const jwksUri = `${side.srv.issuer.replace(/\/$/, '')}/jwks`;
		// Over TLS (self-signed certificate) the JWKS fetched at start is used instead.
		let set = side.localJwks ?? jwksSets.get(jwksUri);
		if (!set) jwksSets.set(jwksUri, (set = jose.createRemoteJWKSet(new URL(jwksUri), { cacheMaxAge: 0, cooldownDuration: 0 })));
		try {
			await jose.jwtVerify(tok, set, { issuer: side.srv.issuer, clockTolerance: 5 });
		} catch (e) {
			D.push(`${s} jose signature/claims verification failed: ${e.code ?? ''} ${e.message}`);
		}
		if (!side.localJwks) pyjwtQueue[side.name].push({ jwks_uri: jwksUri, token: tok, issuer: side.srv.issuer, label: `${currentCase} ${where}` });
	}
}

function compareLocation(D, pre, a, b) {
	if (a === undefined && b === undefined) return;
	if (a === undefined || b === undefined) return differ(D, `${pre}Location`, a, b);
	let ua, ub;
	try { ua = new URL(a); } catch { D.push(`${pre}ref Location unparsable ${show(a)}`); }
	try { ub = new URL(b); } catch { D.push(`${pre}mock Location unparsable ${show(b)}`); }
	if (!ua || !ub) return;
	const before = D.length;
	for (const k of ['protocol', 'username', 'password', 'host', 'pathname', 'hash']) {
		if (ua[k] !== ub[k]) differ(D, `${pre}Location ${k}`, ua[k], ub[k]);
	}
	const pa = [...ua.searchParams], pb = [...ub.searchParams];
	const na = pa.map(([k]) => k), nb = pb.map(([k]) => k);
	if (na.join('&') !== nb.join('&')) namesDiff(D, `${pre}Location query parameter names`, na, nb);
	const codes = [];
	for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
		const [k, va] = pa[i], vb = pb[i][1];
		if (k !== pb[i][0]) continue;
		if (k === 'code') {
			if (!UUID4.test(va)) D.push(`${pre}Location code: ref ${show(va)} is not a lowercase UUID v4`);
			if (!UUID4.test(vb)) D.push(`${pre}Location code: mock ${show(vb)} is not a lowercase UUID v4`);
			codes.push([va, vb]);
		} else if (va !== vb) {
			differ(D, `${pre}Location parameter ${k}`, va, vb);
		}
	}
	if (D.length === before) {
		// Byte-exact once the random code is masked: catches '+' vs '%20', '%27' etc.
		let ra = a, rb = b;
		for (const [ca, cb] of codes) { ra = ra.split(ca).join('<CODE>'); rb = rb.split(cb).join('<CODE>'); }
		if (ra !== rb) differ(D, `${pre}raw Location (code masked)`, ra, rb);
	}
}

// ------------------------------------------------------------------------------------------
// Cases.

const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };
const JSONH = { 'Content-Type': 'application/json' };
const REDIR = 'http://app.example/cb';
const enc = encodeURIComponent;
const q = (pairs) => pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');
const basic = (s) => `Basic ${Buffer.from(s, 'utf8').toString('base64')}`;
const P400 = 'application/problem+json; charset=utf-8';
const JSONCT = 'application/json; charset=utf-8';
const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'; // RFC 7636 appendix B
const S256_CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const PKCE_FORMAT = "Invalid 'code_verifier'. The verifier does not conform with the RFC7636 spec. Ref: https://datatracker.ietf.org/doc/html/rfc7636#section-4.1";
const PKCE_MISMATCH = 'code_verifier provided does not match code_challenge';
const ERR500 = 'Most certainly a bug in the library code. Check the logs for more details and report this to the maintainers.';

let sidesNow; // [refSide, mockSide] of the running phase
const cases = []; // {name, fn(D)} | {skip, reason}
const t = (name, fn) => cases.push({ name, fn });
const skip = (name, reason) => cases.push({ name, skip: true, reason });

// Sends the same request to both servers and compares.  spec is a request or a function
// (side, index) => request (for per-side values such as a code).  Returns [ref, mock] responses.
async function exchange(D, spec, opts = {}) {
	const res = [];
	for (let i = 0; i < 2; i++) {
		const s = typeof spec === 'function' ? spec(sidesNow[i], i) : spec;
		try {
			res.push(await request(sidesNow[i].srv, s));
		} catch (e) {
			throw new Error(`${opts.what ? `${opts.what}: ` : ''}${sidesNow[i].name}: request ${s.method ?? 'GET'} ${s.path} failed: ${e.message}`);
		}
	}
	await compareResponses(D, res[0], res[1], sidesNow, opts);
	return res;
}

const codeOf = (res) => {
	try { return new URL(res.headers.location).searchParams.get('code'); } catch { return null; }
};

// GET /authorize on both with the same query; compared under "authorize:"; returns both codes.
async function authorize(D, query) {
	const [r, m] = await exchange(D, { path: `/authorize?${query}` }, { what: 'authorize', status: 302 });
	const codes = [codeOf(r), codeOf(m)];
	if (!codes[0] || !codes[1]) throw new Error(`authorize gave no code (ref=${show(r.headers.location)} mock=${show(m.headers.location)})`);
	return codes;
}
const authQ = (extra = []) => q([['response_type', 'code'], ['client_id', 'app1'], ['redirect_uri', REDIR], ...extra]);

// POST /token with a form body (string) or per-side function; opts as compareResponses.
const tokenForm = (D, body, opts = {}, headers = {}) => exchange(D, (s, i) => ({ method: 'POST', path: '/token', headers: { ...FORM, ...headers }, body: typeof body === 'function' ? body(s, i) : body }), { ctype: JSONCT, cache: true, status: 200, ...opts });
const tokenJson = (D, obj, opts = {}, headers = {}) => exchange(D, (s, i) => ({ method: 'POST', path: '/token', headers: { ...JSONH, ...headers }, body: JSON.stringify(typeof obj === 'function' ? obj(s, i) : obj) }), { ctype: JSONCT, cache: true, status: 200, ...opts });
const bad = (detail, cache) => ({ status: 400, ctype: P400, detail, cache });

// Per-side check of claims inside one JWT of a token response.
function claims(member, expected) {
	return (res, side, D) => {
		let tok;
		try { tok = JSON.parse(res.text)[member]; } catch { return; }
		const d = decodeJwt(tok);
		if (d.error) return D.push(`${side.name}: ${member} ${d.error}`);
		for (const [k, v] of Object.entries(expected)) {
			if (v === undefined ? k in d.payload : !deepEqual(d.payload[k], v)) D.push(`${side.name}: ${member} claim ${k} = ${show(d.payload[k])}, spec says ${show(v)}`);
		}
	};
}
function members(expected) {
	return (res, side, D) => {
		let keys;
		try { keys = Object.keys(JSON.parse(res.text)); } catch { return; }
		if (keys.join(',') !== expected.join(',')) D.push(`${side.name}: response members ${show(keys)}, spec says ${show(expected)}`);
	};
}
const all = (...fns) => (res, side, D) => fns.forEach((f) => f(res, side, D));
const TOK = ['access_token', 'token_type', 'expires_in'];
const TOKS = [...TOK, 'scope'];
const TOKID = [...TOKS, 'refresh_token', 'id_token'];

function defineCases() {
	// ---- §4 discovery -------------------------------------------------------------------
	const discoveryChecks = (res, side, D) => {
		let j;
		try { j = JSON.parse(res.text); } catch { return; }
		const I = side.srv.issuer;
		if (j.issuer !== I) D.push(`${side.name}: issuer ${show(j.issuer)}, want ${show(I)}`);
		for (const [k, p] of [['token_endpoint', '/token'], ['authorization_endpoint', '/authorize'], ['userinfo_endpoint', '/userinfo'], ['jwks_uri', '/jwks'], ['revocation_endpoint', '/revoke'], ['end_session_endpoint', '/endsession'], ['introspection_endpoint', '/introspect']]) {
			if (j[k] !== I.replace(/\/$/, '') + p) D.push(`${side.name}: ${k} ${show(j[k])}, want ${show(I.replace(/\/$/, '') + p)}`);
		}
	};
	t('discovery: GET /.well-known/openid-configuration', async (D) => {
		await exchange(D, { path: '/.well-known/openid-configuration' }, { status: 200, ctype: JSONCT, cache: false, sideChecks: discoveryChecks });
	});
	t('discovery: Host header has no influence', async (D) => {
		await exchange(D, { path: '/.well-known/openid-configuration', headers: { Host: 'evil.example:444', 'X-Forwarded-Host': 'x.example', 'X-Forwarded-Proto': 'https' } }, { status: 200, sideChecks: discoveryChecks });
	});
	t('discovery: trailing slash and query', async (D) => {
		await exchange(D, { path: '/.well-known/openid-configuration/?a=b' }, { status: 200, sideChecks: discoveryChecks });
	});

	// ---- §5 JWKS --------------------------------------------------------------------------
	const jwksChecks = (res, side, D) => {
		let j;
		try { j = JSON.parse(res.text); } catch { return; }
		if (!Array.isArray(j.keys) || j.keys.length !== 1) return D.push(`${side.name}: want exactly one key, got ${show(j.keys)}`);
		const k = j.keys[0];
		if (Object.keys(k).join(',') !== 'kty,n,e,kid,alg') D.push(`${side.name}: key members ${show(Object.keys(k))}, spec says kty,n,e,kid,alg`);
		if (k.kty !== 'RSA' || k.e !== 'AQAB' || k.alg !== 'RS256') D.push(`${side.name}: kty/e/alg ${show([k.kty, k.e, k.alg])}`);
	};
	t('jwks: GET /jwks', async (D) => {
		await exchange(D, { path: '/jwks' }, { status: 200, ctype: JSONCT, cache: false, randomJwks: true, sideChecks: jwksChecks });
	});
	for (const p of ['/jwks/', '/jwks?x=1', '/a/../jwks', '/./jwks', '/jwks/?x=1&x=2']) {
		t(`routing: GET ${p} -> /jwks`, async (D) => {
			await exchange(D, { path: p }, { status: 200, ctype: JSONCT, randomJwks: true, sideChecks: jwksChecks });
		});
	}
	// ---- §3 routing: 404 ------------------------------------------------------------------
	const notFound = [
		['GET', '/JWKS'], ['GET', '/jwks//'], ['HEAD', '/jwks'], ['POST', '/jwks'], ['GET', '/token'], ['GET', '/token/'],
		['PUT', '/token'], ['DELETE', '/jwks'], ['PATCH', '/jwks'], ['GET', '/nope'], ['GET', '/'], ['POST', '/authorize'],
		['POST', '/userinfo'], ['GET', '/revoke'], ['GET', '/introspect'], ['POST', '/endsession'],
		['POST', '/.well-known/openid-configuration'], ['GET', '/%6Awks'], ['GET', '/jwks.json'], ['GET', '/.well-known/jwks.json'],
		['GET', '/oauth/token'], ['HEAD', '/.well-known/openid-configuration'],
	];
	for (const [method, p] of notFound) {
		t(`routing: ${method} ${p} -> 404 empty`, async (D) => {
			await exchange(D, { method, path: p }, { status: 404, ctype: null, cache: false });
		});
	}
	// ---- §3 OPTIONS ----------------------------------------------------------------------
	for (const p of ['/token', '/nope', '/jwks', '/authorize?redirect_uri=x']) {
		t(`cors: OPTIONS ${p} -> 204`, async (D) => {
			await exchange(D, { method: 'OPTIONS', path: p, headers: { Origin: 'http://spa.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,authorization' } }, {
				status: 204, ctype: null, cache: false,
				sideChecks: (res, side, D2) => { if (res.headers['content-length'] !== undefined) D2.push(`${side.name}: 204 has Content-Length ${res.headers['content-length']}`); },
			});
		});
	}
	t('http: chunked request body', async (D) => {
		await exchange(D, { method: 'POST', path: '/token', headers: { ...FORM, 'Transfer-Encoding': 'chunked' }, chunks: ['grant_type=client_', 'credentials&scope=a', '+b'] }, { status: 200, cache: true, sideChecks: claims('access_token', { scope: 'a b' }) });
	});
	// Sends the same sequence over one keep-alive connection per server; resolves per side
	// [{line, conn}] with status and socket reuse in `line`, Connection/Keep-Alive in `conn`.
	const keepAliveRun = async () => {
		const seq = [
			{ path: '/jwks' }, { method: 'POST', path: '/token', headers: FORM, body: 'grant_type=client_credentials' },
			{ path: '/nope' }, { method: 'POST', path: '/token', headers: JSONH, body: '{' }, { method: 'OPTIONS', path: '/x' },
			{ path: '/authorize?redirect_uri=not-a-url' }, { method: 'POST', path: '/revoke' }, { path: '/endsession' }, { path: '/userinfo' },
		];
		const out = [];
		for (const side of sidesNow) {
			const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
			const lines = [];
			try {
				for (const spec of seq) {
					const r = await request(side.srv, spec, REQUEST_TIMEOUT_MS, agent);
					lines.push({ line: `${spec.method ?? 'GET'} ${spec.path} -> ${r.status} reused=${r.reused}`, conn: `Connection: ${r.headers.connection}, Keep-Alive: ${r.headers['keep-alive']}` });
				}
			} catch (e) {
				lines.push({ line: `error: ${e.message}`, conn: '' });
			} finally {
				agent.destroy();
			}
			out.push(lines);
		}
		return out;
	};
	t('http: keep-alive connection reuse across routes and errors', async (D) => {
		const out = await keepAliveRun();
		for (let i = 0; i < Math.max(out[0].length, out[1].length); i++) if (out[0][i]?.line !== out[1][i]?.line) differ(D, `request ${i + 1}`, out[0][i]?.line, out[1][i]?.line);
	});
	t('http: Connection/Keep-Alive response headers on a keep-alive connection (§3)', async (D) => {
		const out = await keepAliveRun();
		for (let i = 0; i < Math.max(out[0].length, out[1].length); i++) if (out[0][i]?.conn !== out[1][i]?.conn) differ(D, `${out[0][i]?.line}`, out[0][i]?.conn, out[1][i]?.conn);
	});
	t('routing: GET //host/jwks (target parsed against http://localhost -> /jwks)', async (D) => {
		await exchange(D, { path: '//evil.example/jwks' }, { status: 200, randomJwks: true });
	});
	t('cors: GET with Origin is not echoed', async (D) => {
		await exchange(D, { path: '/userinfo', headers: { Origin: 'http://spa.example' } }, { status: 200 });
	});

	// ---- §6 token: client_credentials -----------------------------------------------------
	t('token form: client_credentials', async (D) => {
		await tokenForm(D, 'grant_type=client_credentials', { sideChecks: all(members(TOK), claims('access_token', { scope: undefined, aud: undefined, sub: undefined })) });
	});
	t('token form: client_credentials scope (+ is a space)', async (D) => {
		await tokenForm(D, 'grant_type=client_credentials&scope=read+write%20admin', { sideChecks: all(members(TOKS), claims('access_token', { scope: 'read write admin' })) });
	});
	t('token form: client_credentials empty scope', async (D) => {
		await tokenForm(D, 'grant_type=client_credentials&scope=', { sideChecks: all(members(TOKS), claims('access_token', { scope: '' })) });
	});
	t('token form: client_credentials UTF-8 scope', async (D) => {
		await tokenForm(D, 'grant_type=client_credentials&scope=caf%C3%A9%20%E2%82%AC', { sideChecks: claims('access_token', { scope: 'café €' }) });
	});
	t('token form: client_credentials aud string', async (D) => {
		await tokenForm(D, 'grant_type=client_credentials&scope=s1&aud=api1', { sideChecks: claims('access_token', { scope: 's1', aud: 'api1' }) });
	});
	t('token form: client_credentials repeated aud -> array', async (D) => {
		await tokenForm(D, 'grant_type=client_credentials&aud=api1&aud=api2&aud=api3', { sideChecks: claims('access_token', { aud: ['api1', 'api2', 'api3'] }) });
	});
	t('token form: client_credentials secrets ignored (Basic + client_secret)', async (D) => {
		await tokenForm(D, 'grant_type=client_credentials&client_id=c1&client_secret=wrong', { sideChecks: members(TOK) }, { Authorization: basic('c1:wrong') });
	});
	t('token form: content type with charset', async (D) => {
		await tokenForm(D, 'grant_type=client_credentials&scope=x', {}, { 'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8' });
	});
	t('token form: POST /token/ (trailing slash)', async (D) => {
		await exchange(D, { method: 'POST', path: '/token/', headers: FORM, body: 'grant_type=client_credentials' }, { status: 200, cache: true });
	});
	t('token json: client_credentials scope and aud array', async (D) => {
		await tokenJson(D, { grant_type: 'client_credentials', scope: 'a b', aud: ['x', 'y'] }, { sideChecks: claims('access_token', { scope: 'a b', aud: ['x', 'y'] }) });
	});
	t('token json: client_credentials empty aud array', async (D) => {
		await tokenJson(D, { grant_type: 'client_credentials', aud: [] }, { sideChecks: claims('access_token', { aud: [] }) });
	});
	t('token json: content type with charset', async (D) => {
		await tokenJson(D, { grant_type: 'client_credentials' }, {}, { 'Content-Type': 'application/json; charset=utf-8' });
	});
	t('token form: query string on /token is ignored', async (D) => {
		await exchange(D, { method: 'POST', path: '/token?grant_type=password&scope=q', headers: FORM, body: 'grant_type=client_credentials' }, { status: 200, cache: true, sideChecks: members(TOK) });
	});
	t('token form: key without =, empty pairs', async (D) => {
		await tokenForm(D, '&&grant_type=client_credentials&&scope&', { sideChecks: claims('access_token', { scope: '' }) });
	});
	t('token form: invalid percent-escape kept literally', async (D) => {
		await tokenForm(D, 'grant_type=client_credentials&scope=a%ZZb%2', { sideChecks: claims('access_token', { scope: 'a%ZZb%2' }) });
	});
	t('token form: invalid UTF-8 becomes U+FFFD', async (D) => {
		await tokenForm(D, 'grant_type=client_credentials&scope=%FFx%C3', { sideChecks: claims('access_token', { scope: '\ufffdx\ufffd' }) });
	});
	t('token form: percent-encoded key names', async (D) => {
		await tokenForm(D, 'grant%5Ftype=client_credentials&sc%6Fpe=k+1', { sideChecks: claims('access_token', { scope: 'k 1' }) });
	});
	t('token form: 256 KiB body (no size limit in the reference)', async (D) => {
		const scope = 'x'.repeat(256 * 1024);
		await tokenForm(D, `grant_type=client_credentials&scope=${scope}`, { sideChecks: claims('access_token', { scope }) });
	});
	t('token json: duplicate member names (JSON.parse keeps the last)', async (D) => {
		await exchange(D, { method: 'POST', path: '/token', headers: JSONH, body: '{"grant_type":"password","grant_type":"client_credentials","scope":"a","scope":"b"}' }, { status: 200, cache: true, sideChecks: all(members(TOKS), claims('access_token', { scope: 'b' })) });
	});
	t('token json: whitespace around the body', async (D) => {
		await exchange(D, { method: 'POST', path: '/token', headers: JSONH, body: ' \r\n\t{ "grant_type" : "client_credentials" }\n ' }, { status: 200, cache: true });
	});
	t('token json: refresh_token', async (D) => {
		await tokenJson(D, { grant_type: 'refresh_token', refresh_token: 'r', client_id: 'app1', scope: 'x' }, { sideChecks: all(members(TOKID), claims('id_token', { aud: 'app1' })) });
	});
	t('token json: unicode escapes in body', async (D) => {
		await exchange(D, { method: 'POST', path: '/token', headers: JSONH, body: '{"grant_type":"client_credentials","scope":"caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ /"}' }, { status: 200, cache: true, sideChecks: claims('access_token', { scope: 'café 😀 "q" \\ /' }) });
	});

	// ---- password ------------------------------------------------------------------------
	t('token form: password with username', async (D) => {
		await tokenForm(D, 'grant_type=password&username=alice&password=secret', {
			sideChecks: all(members([...TOK, 'refresh_token', 'id_token']), claims('access_token', { sub: 'alice', amr: ['pwd'], scope: undefined }), claims('id_token', { sub: 'johndoe', aud: undefined, nonce: undefined, amr: undefined })),
		});
	});
	t('token form: password repeated username -> sub array', async (D) => {
		await tokenForm(D, 'grant_type=password&username=alice&username=bob', { sideChecks: claims('access_token', { sub: ['alice', 'bob'] }) });
	});
	t('token form: password without username', async (D) => {
		await tokenForm(D, 'grant_type=password', { sideChecks: claims('access_token', { sub: undefined, amr: ['pwd'] }) });
	});
	t('token form: password scope and client_id', async (D) => {
		await tokenForm(D, 'grant_type=password&username=alice&scope=openid+email&client_id=app1', { sideChecks: all(members(TOKID), claims('access_token', { scope: 'openid email' }), claims('id_token', { aud: 'app1', scope: undefined })) });
	});
	t('token form: password repeated client_id -> id_token aud array', async (D) => {
		await tokenForm(D, 'grant_type=password&client_id=a&client_id=b', { sideChecks: claims('id_token', { aud: ['a', 'b'] }) });
	});
	t('token json: password username number, client_id number', async (D) => {
		await tokenJson(D, { grant_type: 'password', username: 42, client_id: 7 }, { sideChecks: all(claims('access_token', { sub: 42 }), claims('id_token', { aud: 7, sub: 'johndoe' })) });
	});
	t('token json: password username object, client_id array, extra members', async (D) => {
		await tokenJson(D, { grant_type: 'password', username: { n: 1, m: [true, null] }, client_id: ['c1', 'c2'], extra: 1.5 }, { sideChecks: claims('id_token', { aud: ['c1', 'c2'] }) });
	});
	t('token json: password username null, client_id null', async (D) => {
		await tokenJson(D, { grant_type: 'password', username: null, client_id: null }, { sideChecks: all(claims('access_token', { sub: null }), claims('id_token', { aud: null })) });
	});

	// ---- §6.2 client identification -------------------------------------------------------
	const ac = (extra) => (s, i) => `grant_type=authorization_code&code=${extra.codes[i]}${extra.tail ?? ''}`;
	t('token form: authorization_code Basic name wins over client_id', async (D) => {
		const codes = await authorize(D, authQ());
		await tokenForm(D, ac({ codes, tail: '&client_id=other' }), { sideChecks: claims('id_token', { aud: 'basicname' }) }, { Authorization: basic('basicname:pw') });
	});
	t('token form: Basic scheme is case-insensitive', async (D) => {
		await tokenForm(D, 'grant_type=password&client_id=other', { sideChecks: claims('id_token', { aud: 'lower' }) }, { Authorization: `bAsIc ${Buffer.from('lower:pw').toString('base64')}` });
	});
	t('token form: Basic without colon is ignored -> client_id', async (D) => {
		await tokenForm(D, 'grant_type=password&client_id=fromparam', { sideChecks: claims('id_token', { aud: 'fromparam' }) }, { Authorization: basic('nocolon') });
	});
	t('token form: Basic with empty name -> aud ""', async (D) => {
		await tokenForm(D, 'grant_type=password&client_id=fromparam', { sideChecks: claims('id_token', { aud: '' }) }, { Authorization: basic(':pw') });
	});
	t('token form: Basic name with colon in password', async (D) => {
		await tokenForm(D, 'grant_type=password', { sideChecks: claims('id_token', { aud: 'n' }) }, { Authorization: basic('n:p:q') });
	});
	t('token form: Basic garbage is ignored -> client_id', async (D) => {
		await tokenForm(D, 'grant_type=password&client_id=fromparam', { sideChecks: claims('id_token', { aud: 'fromparam' }) }, { Authorization: 'Basic !!!notbase64' });
	});
	t('token form: Bearer header is ignored -> client_id', async (D) => {
		await tokenForm(D, 'grant_type=password&client_id=fromparam', { sideChecks: claims('id_token', { aud: 'fromparam' }) }, { Authorization: 'Bearer abc' });
	});

	// ---- authorization_code ----------------------------------------------------------------
	t('token form: authorization_code with nonce, then nonce consumed', async (D) => {
		const codes = await authorize(D, authQ([['scope', 'openid'], ['state', 'st1'], ['nonce', 'n-0S6_WzA2Mj']]));
		await tokenForm(D, ac({ codes, tail: `&client_id=app1&redirect_uri=${enc(REDIR)}` }), {
			sideChecks: all(members(TOKID), claims('access_token', { sub: 'johndoe', amr: ['pwd'], scope: 'dummy', aud: undefined }), claims('id_token', { sub: 'johndoe', aud: 'app1', nonce: 'n-0S6_WzA2Mj' })),
		});
		await tokenForm(D, ac({ codes, tail: '&client_id=app1' }), { what: 'second exchange', sideChecks: claims('id_token', { nonce: undefined, aud: 'app1' }) });
	});
	t('token form: authorization_code empty nonce is stored and echoed', async (D) => {
		const codes = await authorize(D, authQ([['nonce', '']]));
		await tokenForm(D, ac({ codes }), { sideChecks: claims('id_token', { nonce: '', aud: undefined }) });
	});
	t('token form: authorization_code without code', async (D) => {
		await tokenForm(D, 'grant_type=authorization_code', { sideChecks: all(members(TOKID), claims('access_token', { scope: 'dummy' })) });
	});
	t('token form: authorization_code unknown code', async (D) => {
		await tokenForm(D, 'grant_type=authorization_code&code=11111111-2222-4333-8444-555555555555', { sideChecks: claims('id_token', { nonce: undefined }) });
	});
	t('token form: authorization_code scope given / empty', async (D) => {
		await tokenForm(D, 'grant_type=authorization_code&code=x&scope=openid+profile', { sideChecks: claims('access_token', { scope: 'openid profile' }) });
		await tokenForm(D, 'grant_type=authorization_code&code=x&scope=', { what: 'empty scope', sideChecks: claims('access_token', { scope: '' }) });
	});
	t('token form: authorization_code code reusable', async (D) => {
		const codes = await authorize(D, authQ());
		for (let k = 0; k < 3; k++) await tokenForm(D, ac({ codes }), { what: `exchange ${k + 1}` });
	});
	t('token json: authorization_code with nonce', async (D) => {
		const codes = await authorize(D, authQ([['nonce', 'jn']]));
		await tokenJson(D, (s, i) => ({ grant_type: 'authorization_code', code: codes[i], client_id: 'app1' }), { sideChecks: claims('id_token', { nonce: 'jn', aud: 'app1' }) });
	});

	// ---- PKCE success paths (§6.5) ---------------------------------------------------------
	t('pkce: plain', async (D) => {
		const codes = await authorize(D, authQ([['code_challenge', VERIFIER], ['code_challenge_method', 'plain']]));
		await tokenForm(D, ac({ codes, tail: `&code_verifier=${VERIFIER}` }));
	});
	t('pkce: method defaults to plain', async (D) => {
		const codes = await authorize(D, authQ([['code_challenge', VERIFIER]]));
		await tokenForm(D, ac({ codes, tail: `&code_verifier=${VERIFIER}` }));
	});
	t('pkce: S256 (RFC 7636 appendix B)', async (D) => {
		const codes = await authorize(D, authQ([['code_challenge', S256_CHALLENGE], ['code_challenge_method', 'S256'], ['nonce', 'pk']]));
		await tokenForm(D, ac({ codes, tail: `&code_verifier=${VERIFIER}` }), { sideChecks: claims('id_token', { nonce: 'pk' }) });
	});
	t('pkce: S256 with a random 128-char verifier', async (D) => {
		const v = ('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~').repeat(2).slice(0, 128);
		const ch = createHash('sha256').update(v).digest('base64url');
		const codes = await authorize(D, authQ([['code_challenge', ch], ['code_challenge_method', 'S256']]));
		await tokenForm(D, ac({ codes, tail: `&code_verifier=${enc(v)}` }));
	});
	t('pkce: challenge stored but no verifier sent -> not enforced', async (D) => {
		const codes = await authorize(D, authQ([['code_challenge', S256_CHALLENGE], ['code_challenge_method', 'S256']]));
		await tokenForm(D, ac({ codes }));
	});
	t('pkce: check runs for client_credentials too', async (D) => {
		const codes = await authorize(D, authQ([['code_challenge', VERIFIER]]));
		await tokenForm(D, (s, i) => `grant_type=client_credentials&code=${codes[i]}&code_verifier=${VERIFIER}`, { sideChecks: members(TOK) });
		await tokenForm(D, (s, i) => `grant_type=client_credentials&code=${codes[i]}&code_verifier=${VERIFIER}`, { what: 'replay', ...bad('code_challenge required', true) });
	});
	t('pkce: json body', async (D) => {
		const codes = await authorize(D, authQ([['code_challenge', S256_CHALLENGE], ['code_challenge_method', 'S256']]));
		await tokenJson(D, (s, i) => ({ grant_type: 'authorization_code', code: codes[i], code_verifier: VERIFIER }));
	});

	// ---- PKCE errors (§6.5) -----------------------------------------------------------------
	t('pkce error: no stored challenge', async (D) => {
		const codes = await authorize(D, authQ());
		await tokenForm(D, ac({ codes, tail: `&code_verifier=${VERIFIER}` }), bad('code_challenge required', true));
	});
	t('pkce error: unknown code with verifier', async (D) => {
		await tokenForm(D, `grant_type=authorization_code&code=nope&code_verifier=${VERIFIER}`, bad('code_challenge required', true));
	});
	t('pkce error: verifier too short, then replay', async (D) => {
		const codes = await authorize(D, authQ([['code_challenge', VERIFIER]]));
		await tokenForm(D, ac({ codes, tail: '&code_verifier=short' }), bad(PKCE_FORMAT, true));
		await tokenForm(D, ac({ codes, tail: `&code_verifier=${VERIFIER}` }), { what: 'replay with the right verifier', ...bad('code_challenge required', true) });
	});
	t('pkce error: verifier too long (129)', async (D) => {
		const codes = await authorize(D, authQ([['code_challenge', VERIFIER]]));
		await tokenForm(D, ac({ codes, tail: `&code_verifier=${'a'.repeat(129)}` }), bad(PKCE_FORMAT, true));
	});
	t('pkce error: verifier with a character outside the RFC set', async (D) => {
		const codes = await authorize(D, authQ([['code_challenge', VERIFIER]]));
		await tokenForm(D, ac({ codes, tail: `&code_verifier=${'a'.repeat(42)}%2B` }), bad(PKCE_FORMAT, true));
	});
	t('pkce error: repeated verifier', async (D) => {
		const codes = await authorize(D, authQ([['code_challenge', VERIFIER]]));
		await tokenForm(D, ac({ codes, tail: `&code_verifier=${VERIFIER}&code_verifier=${VERIFIER}` }), bad(PKCE_FORMAT, true));
	});
	t('pkce error: plain mismatch, then replay', async (D) => {
		const codes = await authorize(D, authQ([['code_challenge', VERIFIER]]));
		await tokenForm(D, ac({ codes, tail: `&code_verifier=${'b'.repeat(43)}` }), bad(PKCE_MISMATCH, true));
		await tokenForm(D, ac({ codes, tail: `&code_verifier=${VERIFIER}` }), { what: 'replay', ...bad('code_challenge required', true) });
	});
	t('pkce error: S256 mismatch (verifier equal to the challenge)', async (D) => {
		const codes = await authorize(D, authQ([['code_challenge', S256_CHALLENGE], ['code_challenge_method', 'S256']]));
		await tokenForm(D, ac({ codes, tail: `&code_verifier=${S256_CHALLENGE}` }), bad(PKCE_MISMATCH, true));
	});
	t('pkce error: check runs before the grant type', async (D) => {
		await tokenForm(D, `grant_type=nope&code=x&code_verifier=${VERIFIER}`, bad('code_challenge required', true));
	});
	for (const m of ['S512', 's256', 'PLAIN', '']) {
		t(`pkce error: /authorize code_challenge_method=${JSON.stringify(m)}`, async (D) => {
			await exchange(D, { path: `/authorize?${authQ([['code_challenge', 'abc'], ['code_challenge_method', m]])}` }, {
				status: 400, ctype: P400, detail: `Unsupported code_challenge method ${m}. The following code_challenge_method are supported: plain, S256`,
			});
		});
	}
	t('pkce: empty code_challenge skips the method check', async (D) => {
		await exchange(D, { path: `/authorize?${authQ([['code_challenge', ''], ['code_challenge_method', 'bogus']])}` }, { status: 302 });
	});
	t('pkce: response_type=token skips the method check', async (D) => {
		await exchange(D, { path: `/authorize?${q([['response_type', 'token'], ['redirect_uri', REDIR], ['code_challenge', 'abc'], ['code_challenge_method', 'bogus']])}` }, { status: 302 });
	});

	// ---- refresh_token ----------------------------------------------------------------------
	t('token form: refresh_token', async (D) => {
		await tokenForm(D, 'grant_type=refresh_token&refresh_token=whatever&client_id=app1', { sideChecks: all(members(TOKID), claims('access_token', { sub: 'johndoe', scope: 'dummy', amr: ['pwd'] }), claims('id_token', { aud: 'app1' })) });
	});
	t('token form: refresh_token with scope', async (D) => {
		await tokenForm(D, 'grant_type=refresh_token&refresh_token=x&scope=a', { sideChecks: claims('access_token', { scope: 'a' }) });
	});
	t('token form: refresh_token consumes a nonce stored for a code', async (D) => {
		const codes = await authorize(D, authQ([['nonce', 'rn']]));
		await tokenForm(D, (s, i) => `grant_type=refresh_token&refresh_token=x&code=${codes[i]}`, { sideChecks: claims('id_token', { nonce: 'rn' }) });
		await tokenForm(D, ac({ codes }), { what: 'then authorization_code', sideChecks: claims('id_token', { nonce: undefined }) });
	});
	t('token form: password grant consumes a nonce, client_credentials does not', async (D) => {
		const codes = await authorize(D, authQ([['nonce', 'pn']]));
		await tokenForm(D, (s, i) => `grant_type=client_credentials&code=${codes[i]}`, { what: 'client_credentials', sideChecks: members(TOK) });
		await tokenForm(D, (s, i) => `grant_type=password&code=${codes[i]}`, { what: 'password', sideChecks: claims('id_token', { nonce: 'pn' }) });
	});

	// ---- jwt-bearer (§6.6) -------------------------------------------------------------------
	const JB = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
	const assertion = (payload, header = { alg: 'RS256', typ: 'JWT' }) => `${b64u(header)}.${typeof payload === 'string' ? payload : b64u(payload)}.c2ln`;
	const jb = (a, extra = '') => `grant_type=${enc(JB)}${a === undefined ? '' : `&assertion=${enc(a)}`}${extra}`;
	t('jwt-bearer: valid assertion', async (D) => {
		await tokenForm(D, jb(assertion({ sub: 'svc-1', iss: 'x', aud: 'y', exp: 1 })), { sideChecks: all(members(TOK), claims('access_token', { sub: 'svc-1', client_id: 'svc-1', scope: undefined, aud: undefined })) });
	});
	t('jwt-bearer: with scope', async (D) => {
		await tokenForm(D, jb(assertion({ sub: 'svc-2' }), '&scope=mcp:tools'), { sideChecks: all(members(TOKS), claims('access_token', { scope: 'mcp:tools' })) });
	});
	t('jwt-bearer: two segments only', async (D) => {
		await tokenForm(D, jb(`x.${b64u({ sub: 's' })}`));
	});
	t('jwt-bearer: five segments (JWE-like) uses the second', async (D) => {
		await tokenForm(D, jb(`a.${b64u({ sub: 's5' })}.c.d.e`), { sideChecks: claims('access_token', { sub: 's5' }) });
	});
	t('jwt-bearer: padded base64 payload is accepted (lenient)', async (D) => {
		const p = Buffer.from(JSON.stringify({ sub: 'abc' }), 'utf8').toString('base64');
		if (!p.endsWith('=')) throw new Error('test payload not padded');
		await tokenForm(D, jb(`x.${p}.y`), { sideChecks: claims('access_token', { sub: 'abc' }) });
	});
	t('jwt-bearer: standard-alphabet (+/) base64 payload is accepted (lenient)', async (D) => {
		const obj = { sub: 'svc', x: '>>>???' };
		const p = Buffer.from(JSON.stringify(obj), 'utf8').toString('base64').replace(/=+$/, '');
		if (!/[+/]/.test(p)) throw new Error('test payload has no + or /');
		await tokenForm(D, jb(`x.${p}.y`), { sideChecks: claims('access_token', { sub: 'svc' }) });
	});
	t('jwt-bearer: json body', async (D) => {
		await tokenJson(D, { grant_type: JB, assertion: assertion({ sub: 'j' }), scope: 's' });
	});
	t('jwt-bearer error: missing assertion', async (D) => {
		await tokenForm(D, jb(undefined), bad("Invalid 'assertion' type", true));
	});
	t('jwt-bearer error: no second segment', async (D) => {
		await tokenForm(D, jb('abc'), bad("Invalid 'assertion' format: expected at least header.payload", true));
	});
	t('jwt-bearer error: empty assertion', async (D) => {
		await tokenForm(D, jb(''), bad("Invalid 'assertion' format: expected at least header.payload", true));
	});
	t('jwt-bearer error: empty second segment', async (D) => {
		await tokenForm(D, jb('abc.'), bad("Invalid 'assertion' payload: malformed JSON", true));
	});
	t('jwt-bearer error: non-JSON payload', async (D) => {
		await tokenForm(D, jb(assertion(b64u('not json'))), bad("Invalid 'assertion' payload: malformed JSON", true));
	});
	t('jwt-bearer error: array payload', async (D) => {
		await tokenForm(D, jb(assertion(b64u('[{"sub":"a"}]'))), bad("Invalid 'assertion' payload: expected an object", true));
	});
	t('jwt-bearer error: null payload', async (D) => {
		await tokenForm(D, jb(assertion(b64u('null'))), bad("Invalid 'assertion' payload: expected an object", true));
	});
	t('jwt-bearer error: string payload', async (D) => {
		await tokenForm(D, jb(assertion(b64u('"sub"'))), bad("Invalid 'assertion' payload: expected an object", true));
	});
	t('jwt-bearer error: sub not a string', async (D) => {
		await tokenForm(D, jb(assertion({ sub: 123 })), bad("Invalid 'assertion' payload: 'sub' claim is expected to be a string", true));
	});
	t('jwt-bearer error: sub missing', async (D) => {
		await tokenForm(D, jb(assertion({ iss: 'x' })), bad("Invalid 'assertion' payload: 'sub' claim is expected to be a string", true));
	});
	t('jwt-bearer error: assertion repeated (form)', async (D) => {
		await tokenForm(D, `${jb(assertion({ sub: 'a' }))}&assertion=x.y.z`, bad("Invalid 'assertion' type", false));
	});

	// ---- §6.7 error catalogue ------------------------------------------------------------------
	const raw = (D, headers, body, opts) => exchange(D, { method: 'POST', path: '/token', headers, body }, opts);
	t('token error: malformed JSON', async (D) => raw(D, JSONH, '{"grant_type":', bad('Malformed JSON payload', false)));
	t('token error: empty JSON body', async (D) => raw(D, JSONH, '', bad('Malformed JSON payload', false)));
	t('token error: JSON with trailing garbage', async (D) => raw(D, JSONH, '{"grant_type":"client_credentials"} x', bad('Malformed JSON payload', false)));
	t('token error: JSON scalar number', async (D) => raw(D, JSONH, '42', bad('Invalid JSON body: expected an object or array', false)));
	t('token error: JSON scalar string', async (D) => raw(D, JSONH, '"grant_type"', bad('Invalid JSON body: expected an object or array', false)));
	t('token error: JSON null', async (D) => raw(D, JSONH, 'null', bad('Invalid JSON body: expected an object or array', false)));
	t('token error: JSON true', async (D) => raw(D, JSONH, 'true', bad('Invalid JSON body: expected an object or array', false)));
	t('token error: JSON empty array', async (D) => raw(D, JSONH, '[]', bad('Invalid token request body', false)));
	t('token error: JSON array of objects', async (D) => raw(D, JSONH, '[{"grant_type":"client_credentials"}]', bad('Invalid token request body', false)));
	t('token error: no content type', async (D) => raw(D, {}, 'grant_type=client_credentials', bad('Invalid token request body', false)));
	t('token error: no content type, no body', async (D) => raw(D, {}, undefined, bad('Invalid token request body', false)));
	t('token error: text/plain', async (D) => raw(D, { 'Content-Type': 'text/plain' }, 'grant_type=client_credentials', bad('Invalid token request body', false)));
	t('token error: Content-Type matching is case-sensitive (Application/JSON)', async (D) => raw(D, { 'Content-Type': 'Application/JSON' }, '{"grant_type":"client_credentials"}', bad('Invalid token request body', false)));
	t('token error: multipart/form-data', async (D) => raw(D, { 'Content-Type': 'multipart/form-data; boundary=x' }, '--x\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nclient_credentials\r\n--x--\r\n', bad('Invalid token request body', false)));
	t('token error: empty form body', async (D) => raw(D, FORM, '', bad("Invalid 'grant_type' type", false)));
	t('token error: grant_type missing', async (D) => raw(D, FORM, 'scope=a', bad("Invalid 'grant_type' type", false)));
	t('token error: grant_type repeated', async (D) => raw(D, FORM, 'grant_type=client_credentials&grant_type=password', bad("Invalid 'grant_type' type", false)));
	t('token error: grant_type number (JSON)', async (D) => raw(D, JSONH, '{"grant_type":1}', bad("Invalid 'grant_type' type", false)));
	t('token error: grant_type null (JSON)', async (D) => raw(D, JSONH, '{"grant_type":null}', bad("Invalid 'grant_type' type", false)));
	t('token error: empty JSON object', async (D) => raw(D, JSONH, '{}', bad("Invalid 'grant_type' type", false)));
	t('token error: scope repeated', async (D) => raw(D, FORM, 'grant_type=client_credentials&scope=a&scope=b', bad("Invalid 'scope' type", false)));
	t('token error: scope number (JSON)', async (D) => raw(D, JSONH, '{"grant_type":"client_credentials","scope":1}', bad("Invalid 'scope' type", false)));
	t('token error: scope null (JSON)', async (D) => raw(D, JSONH, '{"grant_type":"client_credentials","scope":null}', bad("Invalid 'scope' type", false)));
	t('token error: code repeated', async (D) => raw(D, FORM, 'grant_type=authorization_code&code=a&code=b', bad("Invalid 'code' type", false)));
	t('token error: code number (JSON)', async (D) => raw(D, JSONH, '{"grant_type":"authorization_code","code":5}', bad("Invalid 'code' type", false)));
	t('token error: aud number (JSON)', async (D) => raw(D, JSONH, '{"grant_type":"client_credentials","aud":5}', bad("Invalid 'aud' type", false)));
	t('token error: aud array with a number (JSON)', async (D) => raw(D, JSONH, '{"grant_type":"client_credentials","aud":["a",5]}', bad("Invalid 'aud' type", false)));
	t('token error: aud object (JSON)', async (D) => raw(D, JSONH, '{"grant_type":"client_credentials","aud":{"a":1}}', bad("Invalid 'aud' type", false)));
	t('token error: assertion number for any grant (JSON)', async (D) => raw(D, JSONH, '{"grant_type":"client_credentials","assertion":1}', bad("Invalid 'assertion' type", false)));
	t('token error: check order grant_type before scope', async (D) => raw(D, FORM, 'scope=a&scope=b', bad("Invalid 'grant_type' type", false)));
	t('token error: check order scope before grant type', async (D) => raw(D, FORM, 'grant_type=nope&scope=a&scope=b', bad("Invalid 'scope' type", false)));
	t('token error: check order scope, code, aud, assertion', async (D) => {
		await raw(D, JSONH, '{"grant_type":"x","assertion":1,"aud":1,"code":1,"scope":1}', bad("Invalid 'scope' type", false));
		await raw(D, JSONH, '{"grant_type":"x","assertion":1,"aud":1,"code":1}', { what: 'without scope', ...bad("Invalid 'code' type", false) });
		await raw(D, JSONH, '{"grant_type":"x","assertion":1,"aud":1}', { what: 'without code', ...bad("Invalid 'aud' type", false) });
	});
	for (const g of ['device_code', 'urn:ietf:params:oauth:grant-type:token-exchange', 'Client_Credentials', '', 'implicit']) {
		t(`token error: unknown grant ${JSON.stringify(g)}`, async (D) => raw(D, FORM, `grant_type=${enc(g)}`, bad('Invalid grant type', true)));
	}
	skip('token error: code=constructor', "the reference answers 500 (its nonce table is a plain JS object); not copied, documented intentional difference (spec §6.7/§14)");

	// ---- §7 authorize -----------------------------------------------------------------------------
	const az = (query, opts = { status: 302, ctype: null, cache: false }) => (D) => exchange(D, { path: `/authorize?${query}` }, opts);
	t('authorize: code + state', az(authQ([['state', 'xyz'], ['scope', 'openid']])));
	t('authorize: empty state is left out', az(authQ([['state', '']])));
	t('authorize: no state', az(authQ()));
	t('authorize: response_type=token -> unsupported_response_type', az(q([['response_type', 'token'], ['redirect_uri', REDIR], ['state', 's']])));
	t('authorize: response_type missing', az(q([['redirect_uri', REDIR]])));
	t('authorize: response_type "code id_token"', az(q([['response_type', 'code id_token'], ['redirect_uri', REDIR], ['nonce', 'n']])));
	t('authorize: response_type "Code"', az(q([['response_type', 'Code'], ['redirect_uri', REDIR]])));
	t('authorize: response_type repeated', az(`response_type=code&response_type=code&redirect_uri=${enc(REDIR)}`));
	const azBad = (detail) => ({ status: 400, ctype: P400, detail, cache: false });
	t('authorize error: redirect_uri missing', az(q([['response_type', 'code'], ['state', 's']]), azBad('Invalid redirectUri type')));
	t('authorize error: redirect_uri repeated', az(`response_type=code&redirect_uri=${enc(REDIR)}&redirect_uri=${enc(REDIR)}`, azBad('Invalid redirectUri type')));
	for (const p of ['nonce', 'scope', 'state', 'code_challenge', 'code_challenge_method']) {
		t(`authorize error: ${p} repeated`, az(`${authQ()}&${p}=a&${p}=b`, azBad(`Invalid ${p} type`)));
	}
	t('authorize error: check order redirect_uri first', az('nonce=a&nonce=b&state=1&state=2', azBad('Invalid redirectUri type')));
	t('authorize error: check order nonce before state', az(`redirect_uri=x&state=1&state=2&nonce=a&nonce=b`, azBad('Invalid nonce type')));
	t('authorize error: type errors before the URL is parsed', az(`redirect_uri=not-a-url&scope=a&scope=b`, azBad('Invalid scope type')));
	t('authorize: redirect_uri with existing ?code=old&x=1', az(authQ([['state', 'new']]).replace(enc(REDIR), enc('http://app.example/cb?code=old&x=1'))));
	t('authorize: redirect_uri with existing state and error params', az(q([['response_type', 'token'], ['redirect_uri', 'http://app.example/cb?state=old&z=1&error=x&state=dup'], ['state', 'new']])));
	t('authorize: redirect_uri with repeated code params', az(q([['response_type', 'code'], ['redirect_uri', 'http://app.example/cb?code=1&a=2&code=3']])));
	t('authorize: redirect_uri with a fragment', az(q([['response_type', 'code'], ['redirect_uri', 'http://app.example/cb?x=1#frag'], ['state', 's']])));
	t('authorize: spaces and quotes re-serialised (+, %27)', az(q([['response_type', 'code'], ['redirect_uri', "http://app.example/cb?a=b c&q='x'&t=~!*()"], ['state', "it's a state"]])));
	t('authorize: state with & = + and UTF-8', az(q([['response_type', 'code'], ['redirect_uri', REDIR], ['state', 'a&b=c+d é/?']])));
	t('authorize: uppercase scheme/host with default port', az(q([['response_type', 'code'], ['redirect_uri', 'HTTP://App.Example:80/CB'], ['state', 's']])));
	t('authorize: https default port and dot segments', az(q([['response_type', 'code'], ['redirect_uri', 'https://app.example:443/a/../cb/./x']])));
	t('authorize: redirect_uri without a path', az(q([['response_type', 'code'], ['redirect_uri', 'http://app.example']])));
	t('authorize: redirect_uri with port and IPv6 host', az(q([['response_type', 'code'], ['redirect_uri', 'http://[::1]:8080/cb']])));
	t('authorize: custom scheme com.example.app:/cb', az(q([['response_type', 'code'], ['redirect_uri', 'com.example.app:/cb'], ['state', 's']])));
	t('authorize: custom scheme with query', az(q([['response_type', 'code'], ['redirect_uri', 'myapp://callback?x=a b']])));
	t('authorize: unparsable redirect_uri -> 500', az(q([['response_type', 'code'], ['redirect_uri', 'not-a-url']]), { status: 500, ctype: P400, detail: ERR500, cache: false }));
	t('authorize: unparsable redirect_uri with bad response_type -> 500', az(q([['response_type', 'token'], ['redirect_uri', '/relative/cb']]), { status: 500, ctype: P400, detail: ERR500 }));
	t('authorize: query decoding (+, invalid escapes, invalid UTF-8)', az(`response_type=code&redirect_uri=${enc(REDIR)}&state=a+b%ZZ%FF`));
	t('authorize: ignored parameters', az(authQ([['prompt', 'login'], ['max_age', '0'], ['response_mode', 'fragment'], ['login_hint', 'x'], ['claims', '{}']])));
	t('authorize: trailing slash path', (D) => exchange(D, { path: `/authorize/?${authQ()}` }, { status: 302 }));

	// ---- §8 userinfo -------------------------------------------------------------------------------
	t('userinfo: no Authorization', async (D) => exchange(D, { path: '/userinfo' }, { status: 200, ctype: JSONCT, cache: false }));
	t('userinfo: garbage Bearer', async (D) => exchange(D, { path: '/userinfo', headers: { Authorization: 'Bearer garbage' } }, { status: 200 }));
	t('userinfo: Basic', async (D) => exchange(D, { path: '/userinfo', headers: { Authorization: basic('a:b') } }, { status: 200 }));
	t('userinfo: valid access token of the same server', async (D) => {
		const [r, m] = await tokenForm(D, 'grant_type=password&username=alice', { what: 'token' });
		const toks = [JSON.parse(r.text).access_token, JSON.parse(m.text).access_token];
		await exchange(D, (s, i) => ({ path: '/userinfo', headers: { Authorization: `Bearer ${toks[i]}` } }), { status: 200, sideChecks: (res, side, D2) => { if (res.text !== '{"sub":"johndoe"}') D2.push(`${side.name}: body ${show(res.text)}`); } });
	});

	// ---- §9 revoke, §10 introspect ------------------------------------------------------------------
	const empty200 = { status: 200, ctype: null, cache: false };
	t('revoke: form body', async (D) => exchange(D, { method: 'POST', path: '/revoke', headers: FORM, body: 'token=abc&token_type_hint=refresh_token' }, empty200));
	t('revoke: no body', async (D) => exchange(D, { method: 'POST', path: '/revoke' }, empty200));
	t('revoke: malformed JSON body is never read', async (D) => exchange(D, { method: 'POST', path: '/revoke', headers: JSONH, body: '{' }, empty200));
	t('revoke: trailing slash', async (D) => exchange(D, { method: 'POST', path: '/revoke/', headers: FORM, body: 'token=x' }, empty200));
	const active = { status: 200, ctype: JSONCT, cache: false, sideChecks: (res, side, D) => { if (res.text !== '{"active":true}') D.push(`${side.name}: body ${show(res.text)}`); } };
	t('introspect: form body', async (D) => exchange(D, { method: 'POST', path: '/introspect', headers: FORM, body: 'token=abc' }, active));
	t('introspect: malformed JSON body is never read', async (D) => exchange(D, { method: 'POST', path: '/introspect', headers: JSONH, body: '{' }, active));
	t('introspect: no body', async (D) => exchange(D, { method: 'POST', path: '/introspect' }, active));

	// ---- §11 endsession ---------------------------------------------------------------------------------
	const logout = { status: 200, ctype: 'text/plain; charset=utf-8', cache: false, sideChecks: (res, side, D) => { if (res.text !== 'Logout successful') D.push(`${side.name}: body ${show(res.text)}`); } };
	const es = (query, opts) => (D) => exchange(D, { path: `/endsession${query}` }, opts);
	const redirect = { status: 302, ctype: null, cache: false };
	t('endsession: no target -> 200 text/plain', es('', logout));
	t('endsession: empty target -> 200', es('?post_logout_redirect_uri=&state=s', logout));
	t('endsession: repeated state without target -> 200 (state not inspected)', es('?state=a&state=b', logout));
	t('endsession: id_token_hint only -> 200', es('?id_token_hint=abc.def.ghi&client_id=x', logout));
	t('endsession: target -> 302', es(`?${q([['post_logout_redirect_uri', 'http://app.example/bye']])}`, redirect));
	t('endsession: target + state', es(`?${q([['post_logout_redirect_uri', 'http://app.example/bye'], ['state', 'st']])}`, redirect));
	t('endsession: target + empty state', es(`?${q([['post_logout_redirect_uri', 'http://app.example/bye'], ['state', '']])}`, redirect));
	t('endsession: target with query/fragment + state re-serialised', es(`?${q([['post_logout_redirect_uri', "HTTP://App.Example:80/bye?a=b c&state=old&q='#f"], ['state', 'x y']])}`, redirect));
	t('endsession: target without query keeps it untouched', es(`?${q([['post_logout_redirect_uri', "http://app.example/bye?a=b c&q='"]])}`, redirect));
	t('endsession: custom scheme target', es(`?${q([['post_logout_redirect_uri', 'com.example.app:/logout'], ['state', 's']])}`, redirect));
	t('endsession: repeated target -> 400', es(`?post_logout_redirect_uri=${enc(REDIR)}&post_logout_redirect_uri=${enc(REDIR)}`, { status: 400, ctype: P400, detail: 'Invalid post_logout_redirect_uri type', cache: false }));
	t('endsession: repeated state with target -> 400', es(`?post_logout_redirect_uri=${enc(REDIR)}&state=a&state=b`, { status: 400, ctype: P400, detail: 'Invalid state type' }));
	t('endsession: unparsable target -> 500', es('?post_logout_redirect_uri=not-a-url', { status: 500, ctype: P400, detail: ERR500 }));
	t('endsession: unparsable target is reported before a repeated state', es('?post_logout_redirect_uri=not-a-url&state=a&state=b', { status: 500, ctype: P400, detail: ERR500 }));
	t('endsession: trailing slash', es('/?state=x', logout));
}

// Cases that need their own server processes: CLI behaviour and --jwk keys.
function defineCliCases(cfg) {
	const { refCmd, mockCmd } = cfg;
	const both = async (args, timeout = 10000) => Promise.all([runProgram(refCmd[0], [...refCmd.slice(1), ...args], timeout), runProgram(mockCmd[0], [...mockCmd.slice(1), ...args], timeout)]);
	const KEYERR = 'Invalid JWK type. No "private" key related data has been found.';
	for (const [name, args, msg] of [
		['-p abc', ['-a', '127.0.0.1', '-p', 'abc'], 'Invalid port number.'],
		['-p 65536', ['-a', '127.0.0.1', '-p', '65536'], 'Invalid port number.'],
		['-p -1', ['-a', '127.0.0.1', '-p', '-1'], 'Invalid port number.'],
		['unknown option', ['-a', '127.0.0.1', '--bogus'], "Unrecognized option '--bogus'."],
		['-c without -k', ['-a', '127.0.0.1', '-p', '0', '-c', '/dev/null'], 'Both key and cert need to be supplied to start the server with https'],
		['--jwk without alg', ['-a', '127.0.0.1', '-p', '0', '--jwk', path.join(cfg.keyDir, 'noalg.json')], 'Unspecified JWK "alg" property'],
		['--jwk with HS256', ['-a', '127.0.0.1', '-p', '0', '--jwk', path.join(cfg.keyDir, 'hs256.json')], 'Unsupported JWK "alg" value ("HS256")'],
		['--jwk with a public key only', ['-a', '127.0.0.1', '-p', '0', '--jwk', path.join(cfg.keyDir, 'public.json')], KEYERR],
	]) {
		t(`cli error: ${name}`, async (D) => {
			const [r, m] = await both(args);
			if (r.timedOut) D.push('ref did not exit (harness/spec mismatch)');
			if (m.timedOut) D.push('mock did not exit within 10 s (flag accepted and server started?)');
			if (r.code !== m.code) differ(D, 'exit status', r.code, m.code);
			if (r.code !== 1) D.push(`ref exit status ${r.code}, spec says 1 (harness/spec mismatch)`);
			for (const [x, n] of [[r, 'ref'], [m, 'mock']]) {
				if (!x.stderr.includes(msg)) D.push(`${n}: stderr lacks ${show(msg)}: ${show(x.stderr.trim().split('\n').slice(0, 3).join(' / '))}`);
			}
		});
	}
	t('cli error: -p without value (both exit 1; the reference says "Empty array", mockidp names the option)', async (D) => {
		const [r, m] = await both(['-a', '127.0.0.1', '-p']);
		if (r.code !== 1 || m.code !== 1) differ(D, 'exit status', r.code, m.code);
		if (!m.stderr.includes("option '-p' needs a value")) D.push(`mock: stderr ${show(m.stderr.trim())}`);
	});
	t('cli: -h prints usage on stdout and exits 0 (texts differ on purpose: mockidp documents its extra flags)', async (D) => {
		const [r, m] = await both(['-h', '-p', 'abc']);
		if (r.code !== 0 || m.code !== 0) differ(D, 'exit status', r.code, m.code);
		if (!/usage/i.test(m.stdout) || !m.stdout.includes('--jwk') || !m.stdout.includes('--save-jwk')) D.push('mock: usage lacks the shared flags');
	});
	t('cli: -p 0 start-up log lines', async (D) => {
		const norm = (srv) => srv.stdout.split(String(srv.port)).join('<PORT>').replace(/[0-9a-f]{80}/g, '<KID>');
		const lines = [norm(sidesNow[0].srv), norm(sidesNow[1].srv)];
		if (lines[0] !== lines[1]) differ(D, 'stdout (port and kid masked)', lines[0], lines[1]);
		if (cfg.mockFixedPort) D.push(`mock: ${cfg.mockFixedPort}`);
	});
	t('cli: --save-jwk writes <kid>.json with the private key', async (D) => {
		const got = [];
		for (const [i, cmd] of [refCmd, mockCmd].entries()) {
			const dir = path.join(cfg.keyDir, `save-${i}`);
			mkdirSync(dir);
			let srv;
			try {
				srv = await startServer('save-jwk', cmd[0], [...cmd.slice(1), '-a', '127.0.0.1', '-p', '0', '--save-jwk'], { cwd: dir });
				const jwks = JSON.parse((await request(srv, { path: '/jwks' })).text);
				const files = readdirSync(dir);
				const kid = jwks.keys[0]?.kid;
				const text = files.length === 1 ? readFileSync(path.join(dir, files[0]), 'utf8') : '';
				let key = {};
				try { key = JSON.parse(text); } catch { /* reported below */ }
				const { d, p, q: qq, dp, dq, qi, ...pub } = key;
				got.push({
					files: files.map((f) => f.split(kid).join('<KID>')),
					members: Object.keys(key),
					pretty: text === JSON.stringify(key, null, 2),
					publicMatchesJwks: JSON.stringify(pub) === JSON.stringify(jwks.keys[0]),
					stdout: srv.stdout.split(String(srv.port)).join('<PORT>').split(kid).join('<KID>'),
				});
			} catch (e) {
				got.push({ error: e.message.split('\n')[0] });
			} finally {
				await stopServer(srv);
			}
		}
		for (const k of new Set([...Object.keys(got[0]), ...Object.keys(got[1])])) {
			if (!deepEqual(got[0][k], got[1][k])) differ(D, k, got[0][k], got[1][k]);
		}
		if (got[0].pretty !== true || got[0].publicMatchesJwks !== true) D.push(`ref: unexpected ${show(got[0])} (harness/spec mismatch)`);
	});
	// -a: the listening line shows the bound address; the issuer host is localhost for
	// loopback/wildcard addresses and the address itself otherwise (§2.1).
	// Only loopback and wildcard binds, and requests only to loopback: tests send no
	// traffic to the machine's other addresses.
	for (const [addr, issuerHost] of [['::1', 'localhost'], ['0.0.0.0', 'localhost'], ['::', 'localhost'], ['127.0.0.2', 'localhost'], ['localhost', 'localhost']]) {
		t(`cli: -a ${addr} -> issuer http://${issuerHost}:PORT`, async (D) => {
			const got = [];
			for (const cmd of [refCmd, mockCmd]) {
				let srv;
				try {
					srv = await startServer('cli', cmd[0], [...cmd.slice(1), '-a', addr, '-p', '0']);
					const j = JSON.parse((await request(srv, { path: '/.well-known/openid-configuration' })).text);
					const tok = JSON.parse((await request(srv, { method: 'POST', path: '/token', headers: FORM, body: 'grant_type=client_credentials' })).text);
					const mask = (x) => String(x).split(`:${srv.port}`).join(':<PORT>');
					got.push({ stdout: mask(srv.stdout).replace(/[0-9a-f]{80}/g, '<KID>'), issuer: mask(j.issuer), jwks_uri: mask(j.jwks_uri), iss: mask(decodeJwt(tok.access_token).payload?.iss) });
				} catch (e) {
					got.push({ error: e.message.split('\n')[0] });
				} finally {
					await stopServer(srv);
				}
			}
			for (const k of new Set([...Object.keys(got[0]), ...Object.keys(got[1])])) if (got[0][k] !== got[1][k]) differ(D, k, got[0][k], got[1][k]);
			if (got[0].issuer !== `http://${issuerHost}:<PORT>`) D.push(`ref issuer ${show(got[0].issuer)}, spec says http://${issuerHost}:<PORT> (harness/spec mismatch)`);
		});
	}
	t('cli: -p parsed with parseInt ("<port>x")', async (D) => {
		const res = [];
		for (const cmd of [refCmd, mockCmd]) {
			const port = await freePort();
			let srv;
			try {
				srv = await startServer('cli', cmd[0], [...cmd.slice(1), '-a', '127.0.0.1', '-p', `${port}x`], { port });
				res.push('listening');
			} catch (e) {
				res.push(`failed: ${e.message.split('\n')[0]}`);
			} finally {
				await stopServer(srv);
			}
		}
		if (res[0] !== res[1]) differ(D, 'result', res[0], res[1]);
	});
}

// ------------------------------------------------------------------------------------------
// Phases with --jwk keys and --issuer-url-trailing-slash: a pair of fresh servers each.

async function makeKeys(dir) {
	const mk = async (alg, kid, opts = {}) => {
		const { privateKey } = await jose.generateKeyPair(alg, { extractable: true, ...opts });
		const jwk = await jose.exportJWK(privateKey);
		return { kid, ...jwk, alg };
	};
	const rsa = await mk('RS256', 'difftest-rsa');
	const ec = await mk('ES256', 'difftest-ec');
	rsa.use = 'sig'; // a member we supplied stays in the JWKS
	writeFileSync(path.join(dir, 'rsa.json'), JSON.stringify(rsa));
	writeFileSync(path.join(dir, 'ec.json'), JSON.stringify(ec));
	writeFileSync(path.join(dir, 'noalg.json'), JSON.stringify({ ...ec, alg: undefined }));
	writeFileSync(path.join(dir, 'hs256.json'), JSON.stringify({ kty: 'oct', k: 'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0', alg: 'HS256', kid: 'h' }));
	const { d, ...pub } = ec;
	writeFileSync(path.join(dir, 'public.json'), JSON.stringify(pub));
	return { rsa, ec };
}

function defineJwkCases(keys) {
	const pub = (k) => {
		const x = { ...k };
		for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi']) delete x[m];
		return x;
	};
	t('jwk: start-up log lines', async (D) => {
		const norm = (srv) => srv.stdout.split(String(srv.port)).join('<PORT>').split('\n').sort().join('\n');
		const a = norm(sidesNow[0].srv), b = norm(sidesNow[1].srv);
		if (a !== b) differ(D, 'stdout lines (sorted, port masked)', a, b);
	});
	t('jwk: JWKS holds the supplied public keys, members in file order', async (D) => {
		const [r, m] = await exchange(D, { path: '/jwks' }, { status: 200 });
		// The reference adds --jwk keys concurrently, so the initial order may vary: compare sorted by kid.
		for (const [res, side] of [[r, sidesNow[0]], [m, sidesNow[1]]]) {
			let ks;
			try { ks = JSON.parse(res.text).keys; } catch { D.push(`${side.name}: not JSON`); continue; }
			const got = JSON.stringify([...ks].sort((x, y) => (x.kid < y.kid ? -1 : 1)));
			const want = JSON.stringify([pub(keys.ec), pub(keys.rsa)]);
			if (got !== want) differ(D, `${side.name}: keys (sorted by kid) vs the supplied public keys`, JSON.parse(want), JSON.parse(got));
		}
	});
	t('jwk: round robin signing rotates the JWKS', async (D) => {
		for (let i = 0; i < 2; i++) {
			const side = sidesNow[i];
			const j0 = JSON.parse((await request(side.srv, { path: '/jwks' })).text).keys.map((k) => k.kid);
			const tr = JSON.parse((await request(side.srv, { method: 'POST', path: '/token', headers: FORM, body: 'grant_type=password' })).text);
			const ka = decodeJwt(tr.access_token).header?.kid, ki = decodeJwt(tr.id_token).header?.kid;
			const j1 = JSON.parse((await request(side.srv, { path: '/jwks' })).text).keys.map((k) => k.kid);
			if (ka !== j0[0]) D.push(`${side.name}: access token kid ${show(ka)}, want the first JWKS key ${show(j0[0])}`);
			if (ki !== j0[1]) D.push(`${side.name}: id_token kid ${show(ki)}, want the second JWKS key ${show(j0[1])}`);
			if (j1.join() !== j0.join()) D.push(`${side.name}: after two signatures the JWKS order is ${show(j1)}, want ${show(j0)} again`);
			const t2 = JSON.parse((await request(side.srv, { method: 'POST', path: '/token', headers: FORM, body: 'grant_type=client_credentials' })).text);
			const j2 = JSON.parse((await request(side.srv, { path: '/jwks' })).text).keys.map((k) => k.kid);
			if (decodeJwt(t2.access_token).header?.kid !== j0[0]) D.push(`${side.name}: third token kid ${show(decodeJwt(t2.access_token).header?.kid)}, want ${show(j0[0])}`);
			if (j2.join() !== [j0[1], j0[0]].join()) D.push(`${side.name}: after one more signature the JWKS order is ${show(j2)}, want ${show([j0[1], j0[0]])}`);
		}
	});
	t('jwk: tokens signed with RS256 and ES256 keys verify', async (D) => {
		await tokenForm(D, 'grant_type=password&username=u&client_id=c');
		await tokenForm(D, 'grant_type=client_credentials', { what: 'client_credentials' });
		await tokenForm(D, 'grant_type=client_credentials', { what: 'client_credentials again' });
	});
	t('jwk: discovery still advertises RS256 only', async (D) => {
		await exchange(D, { path: '/.well-known/openid-configuration' }, { status: 200 });
	});
}

function defineSlashCases() {
	t('trailing-slash issuer: discovery', async (D) => {
		await exchange(D, { path: '/.well-known/openid-configuration' }, {
			status: 200,
			sideChecks: (res, side, D2) => {
				const j = JSON.parse(res.text);
				if (j.issuer !== side.srv.issuer) D2.push(`${side.name}: issuer ${show(j.issuer)}, want ${show(side.srv.issuer)}`);
				if (j.jwks_uri !== `${side.srv.issuer}jwks`) D2.push(`${side.name}: jwks_uri ${show(j.jwks_uri)}`);
			},
		});
	});
	t('trailing-slash issuer: token iss', async (D) => {
		await tokenForm(D, 'grant_type=password&username=u');
	});
	t('trailing-slash issuer: start-up log lines', async (D) => {
		const norm = (srv) => srv.stdout.split(String(srv.port)).join('<PORT>').replace(/[0-9a-f]{80}/g, '<KID>');
		if (norm(sidesNow[0].srv) !== norm(sidesNow[1].srv)) differ(D, 'stdout (port and kid masked)', norm(sidesNow[0].srv), norm(sidesNow[1].srv));
	});
}

function defineTlsCases() {
	t('tls: start-up log lines (scheme still printed as http://)', async (D) => {
		const norm = (srv) => srv.stdout.split(String(srv.port)).join('<PORT>').replace(/[0-9a-f]{80}/g, '<KID>');
		if (norm(sidesNow[0].srv) !== norm(sidesNow[1].srv)) differ(D, 'stdout (port and kid masked)', norm(sidesNow[0].srv), norm(sidesNow[1].srv));
	});
	t('tls: discovery uses https://localhost:PORT', async (D) => {
		await exchange(D, { path: '/.well-known/openid-configuration' }, {
			status: 200,
			sideChecks: (res, side, D2) => { if (JSON.parse(res.text).issuer !== side.srv.issuer) D2.push(`${side.name}: issuer ${show(JSON.parse(res.text).issuer)}, want ${show(side.srv.issuer)}`); },
		});
	});
	t('tls: token iss is the https issuer', async (D) => {
		await tokenForm(D, 'grant_type=password&username=u&client_id=c');
	});
	t('tls: authorize redirect', async (D) => {
		await exchange(D, { path: `/authorize?${authQ([['state', 's']])}` }, { status: 302 });
	});
}

function makeCert(dir) {
	const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '2',
		'-keyout', path.join(dir, 'tls.key'), '-out', path.join(dir, 'tls.crt')], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30000 });
	return r.status === 0;
}

// ------------------------------------------------------------------------------------------
// Runner.

let passed = 0, failed = 0;

function report(name, D) {
	if (D.length === 0) {
		passed++;
		console.log(`ok - ${name}`);
		return;
	}
	failed++;
	console.log(`not ok - ${name}: ${D[0]}${D.length > 1 ? ` [+${D.length - 1} more]` : ''}`);
	for (const d of D.slice(1)) console.log(`#   ${d}`);
}

async function runCases() {
	for (const c of cases.splice(0)) {
		if (FILTER && !FILTER.test(c.name)) continue;
		if (c.skip) {
			console.log(`# skip - ${c.name}: ${c.reason}`);
			continue;
		}
		currentCase = c.name;
		const D = [];
		try {
			await c.fn(D);
		} catch (e) {
			D.push(`exception: ${e.message}`);
		}
		report(c.name, D);
	}
}

async function sideOf(name, srv) {
	const j = JSON.parse((await request(srv, { path: '/jwks' })).text);
	return { name, srv, kids: j.keys.map((k) => k.kid), localJwks: srv.tls ? jose.createLocalJWKSet(j) : undefined };
}

// Starts the reference and the mock with args (+ -a 127.0.0.1 -p 0).  When the mock prints
// no listening line, retries it on a port picked here so the other cases still run.
async function startPair(cfg, args, opts = {}) {
	const ref = await startServer('ref', cfg.refCmd[0], [...cfg.refCmd.slice(1), '-a', '127.0.0.1', '-p', '0', ...args], opts);
	let mock;
	try {
		mock = await startServer('mock', cfg.mockCmd[0], [...cfg.mockCmd.slice(1), '-a', '127.0.0.1', '-p', '0', ...args], opts);
	} catch (e) {
		if (!(e instanceof StartError) || !/no "OAuth 2 server listening/.test(e.message)) {
			await stopServer(ref);
			throw e;
		}
		const port = await freePort();
		try {
			mock = await startServer('mock', cfg.mockCmd[0], [...cfg.mockCmd.slice(1), '-a', '127.0.0.1', '-p', String(port), ...args], { ...opts, port });
		} catch (e2) {
			await stopServer(ref);
			throw e2;
		}
		cfg.mockFixedPort = `-p 0 gave no listening line within ${START_TIMEOUT_MS} ms; restarted with -p ${port}`;
	}
	sidesNow = [await sideOf('ref', ref), await sideOf('mock', mock)];
	return [ref, mock];
}

// Runs verify_pyjwt.py over the tokens collected for one side (servers must still be up).
async function pyjwt(sideName) {
	const items = pyjwtQueue[sideName].splice(0);
	const D = [];
	if (items.length === 0) {
		if (!FILTER) report(`pyjwt: ${sideName} tokens`, ['no tokens collected (harness error)']);
		return;
	} else {
		const res = await new Promise((resolve) => {
			const child = spawn(PYTHON, [PYJWT_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
			children.add(child);
			let out = '', err = '';
			child.stdout.on('data', (d) => (out += d));
			child.stderr.on('data', (d) => (err += d));
			child.on('error', (e) => { children.delete(child); resolve({ code: -1, out, err: err + e.message }); });
			child.on('close', (code) => { children.delete(child); resolve({ code, out, err }); });
			child.stdin.end(items.map((x) => JSON.stringify(x)).join('\n') + '\n');
		});
		if (res.code !== 0) {
			D.push(`exit ${res.code}: ${res.out.trim()}`);
			for (const l of res.err.trim().split('\n').slice(0, 20)) D.push(l);
		}
	}
	report(`pyjwt: ${sideName} tokens verify against ${sideName}'s JWKS (${items.length} tokens)`, D);
}

async function phase(cfg, title, args, define, opts = {}) {
	console.log(`# --- ${title}`);
	const failedBefore = failed;
	let servers;
	try {
		servers = await startPair(cfg, args, opts);
	} catch (e) {
		failed++;
		console.log(`not ok - ${title}: servers did not start: ${e.message.split('\n')[0]}`);
		for (const l of e.message.split('\n').slice(1, 40)) console.log(`#   ${l}`);
		cases.splice(0);
		return;
	}
	try {
		define();
		await runCases();
		if (!opts.tls) { // PyJWKClient would refuse the self-signed certificate
			await pyjwt('ref');
			await pyjwt('mock');
		}
	} finally {
		if (opts.sigint && (!FILTER || FILTER.test('cli: SIGINT'))) {
			// SIGINT: both print two lines and exit 0 once connections are gone (§2).
			const D = [];
			currentCase = 'cli: SIGINT';
			for (const s of servers) await stopServer(s, 'SIGINT', 8000);
			const tail = (s) => s.stdout.split('\n').slice(-3).join('\n');
			const ex = servers.map((s) => `${s.exited.code}/${s.exited.signal}`);
			if (ex[0] !== ex[1]) differ(D, 'exit status/signal after SIGINT', ex[0], ex[1]);
			if (tail(servers[0]) !== tail(servers[1])) differ(D, 'last stdout lines', tail(servers[0]), tail(servers[1]));
			report('cli: SIGINT prints the stop lines and exits', D);
		}
		for (const s of servers) await stopServer(s);
		if (failed > failedBefore) {
			for (const s of servers) {
				const err = s.stderr.trim();
				if (err) console.log(`# ${s.label} stderr (last lines):\n${err.split('\n').slice(-15).map((l) => `#   ${l}`).join('\n')}`);
			}
		}
	}
}

async function main() {
	if (!existsSync(REF_CLI)) {
		console.log(`not ok - harness: ${REF_CLI} missing (run npm install in ${TESTS_DIR})`);
		console.log('0 passed, 1 failed');
		process.exit(1);
	}
	const refCmd = [process.execPath, REF_CLI];
	const mockCmd = MOCK_IS_REF ? refCmd : [path.resolve(MOCK_BIN)];
	if (!MOCK_IS_REF && !existsSync(mockCmd[0])) {
		console.log(`not ok - harness: mockidp binary ${mockCmd[0]} not found`);
		console.log('0 passed, 1 failed');
		process.exit(1);
	}
	console.log(`# ref:  ${refCmd.join(' ')}`);
	console.log(`# mock: ${mockCmd.join(' ')}${MOCK_IS_REF ? ' (DIFFTEST_MOCK_IS_REF=1: harness self-test)' : ''}`);
	const keyDir = mkdtempSync(path.join(os.tmpdir(), 'difftest-'));
	const cfg = { refCmd, mockCmd, keyDir };
	try {
		const keys = await makeKeys(keyDir);
		await phase(cfg, 'default CLI (generated RS256 key)', [], () => {
			defineCases();
			defineCliCases(cfg);
		}, { sigint: true });
		await phase(cfg, '--jwk rsa.json --jwk ec.json', ['--jwk', path.join(keyDir, 'rsa.json'), '--jwk', path.join(keyDir, 'ec.json')], () => defineJwkCases(keys));
		await phase(cfg, '--issuer-url-trailing-slash', ['--issuer-url-trailing-slash'], defineSlashCases, { issuerSlash: true });
		if (makeCert(keyDir)) {
			await phase(cfg, '-c tls.crt -k tls.key (HTTPS)', ['-c', path.join(keyDir, 'tls.crt'), '-k', path.join(keyDir, 'tls.key')], defineTlsCases, { tls: true });
		} else {
			console.log('# skip - tls: openssl could not make a certificate');
		}
		if (!FILTER || FILTER.test('headers')) {
			const D = [];
			for (const [what, where] of headerNameDiffs) D.push(`${what} in ${where.length} responses, e.g. ${where.slice(0, 3).map((w) => JSON.stringify(w)).join(', ')}`);
			report('headers: same header names on every response (Connection/Keep-Alive/Transfer-Encoding not compared)', D);
		}
	} finally {
		rmSync(keyDir, { recursive: true, force: true });
	}
	console.log(`${passed} passed, ${failed} failed`);
	process.exit(failed ? 1 : 0);
}

await main();
