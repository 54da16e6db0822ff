// browser_flow.mjs: the authorization code flow in a real browser: headless Chromium
// from Debian's chromium package, driven by playwright-core (which downloads nothing).
// Opens the authorization URL, takes a screenshot of the login page, fills in the
// username and password, clicks "Sign in", clicks "Allow" when the consent page comes,
// and waits until the browser lands on the redirect URI.
// Usage: node browser_flow.mjs AUTHORIZE_URL USERNAME PASSWORD REDIRECT_URI SCREENSHOT.png|- [MODE]
// MODE is query (the default: the response comes in the redirect's query) or form_post
// (the response page's script must submit its form: the browser POSTs the response to
// the redirect URI). "-" takes no screenshot.
// Prints one JSON line {"ok": true, "method", "code", "state", "iss", "csp_violations":
// [...]} or exits 1 with the error.
import { chromium } from 'playwright-core';

const [url, username, password, redirectUri, screenshot, mode = 'query'] = process.argv.slice(2);
const browser = await chromium.launch({
	executablePath: '/usr/bin/chromium',
	args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
		'--disable-component-update', '--disable-sync', '--no-first-run'],
});
let status = 0;
try {
	const context = await browser.newContext({ viewport: { width: 800, height: 640 } });
	const page = await context.newPage();
	const violations = [];
	page.on('console', (m) => {
		if (/Content Security Policy|Refused to/i.test(m.text()))
			violations.push(m.text());
	});
	await page.goto(url);
	await page.waitForSelector('input[name="username"]');
	if (screenshot !== '-')
		await page.screenshot({ path: screenshot, fullPage: true });
	// The request that brings the response to the redirect URI.
	const landing = page.waitForRequest((q) => q.url().startsWith(redirectUri)
		&& q.isNavigationRequest(), { timeout: 30000 });

	await page.fill('input[name="username"]', username);
	await page.fill('input[name="password"]', password);
	await Promise.all([
		page.waitForNavigation(),
		page.getByRole('button', { name: 'Sign in' }).click(),
	]);
	const allow = page.getByRole('button', { name: 'Allow' });
	if (await allow.count() > 0) {
		await Promise.all([page.waitForNavigation(), allow.click()]);
	}
	const req = await landing;
	await page.waitForURL((u) => u.href.startsWith(redirectUri), { timeout: 30000 });
	const params = mode === 'form_post' ? new URLSearchParams(req.postData() || '')
		: new URL(req.url()).searchParams;
	console.log(JSON.stringify({
		ok: true,
		method: req.method(),
		code: params.get('code'),
		state: params.get('state'),
		iss: params.get('iss'),
		csp_violations: violations,
	}));
} catch (e) {
	console.error(String(e && e.stack ? e.stack : e));
	status = 1;
} finally {
	await browser.close();
}
process.exit(status);
