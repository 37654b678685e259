// The dashboard in a real browser: Debian's chromium, driven by
// playwright-core, against `hooksign serve` on a fresh store with a local
// receiver. HOOKSIGN_CLI names the hooksign binary, HOOKSIGN_HTTP_WASM the
// edge component; HOOKSIGN_SCREENSHOTS, if set, a directory for the
// screenshots of docs/.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createHmac, createPublicKey, generateKeyPairSync, randomBytes, timingSafeEqual, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

const CLI = process.env.HOOKSIGN_CLI;
const COMPONENT = process.env.HOOKSIGN_HTTP_WASM;
const SCREENSHOTS = process.env.HOOKSIGN_SCREENSHOTS;
const KEY = `sgn_live_${randomBytes(24).toString('hex')}`;
const PLATFORM_KEY = `sgn_plat_${randomBytes(24).toString('hex')}`;

let receiver;
let received = [];
let service;
let base;
let browser;
let dataDir;

/** A receiver on a free loopback port: answers 200 with a small JSON body. */
function startReceiver() {
  return new Promise((resolve) => {
    const server = http.createServer((request, response) => {
      const chunks = [];
      request.on('data', (chunk) => chunks.push(chunk));
      request.on('end', () => {
        received.push({ headers: request.headers, body: Buffer.concat(chunks).toString() });
        response.writeHead(200, { 'content-type': 'application/json', 'x-receiver': 'dashboard-test' });
        response.end('{"received":true}');
      });
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/** `hooksign serve` on a free port; resolves with its base URL. */
function startService(receiverPort) {
  dataDir = mkdtempSync(join(tmpdir(), 'hooksign-dashboard-'));
  const entry = `acme:${createHash('sha256').update(KEY).digest('hex')}`;
  const args = ['serve', '--listen', '127.0.0.1:0', '--data', dataDir, '--dispatch-interval-ms', '200'];
  if (COMPONENT) args.push('--component', COMPONENT);
  const sealing = `t1:${randomBytes(32).toString('base64')}`;
  args.push('--variable', `api_keys=${entry}`, '--variable', 'allow_private_targets=true');
  args.push('--variable', `sealing_keys=${sealing}`);
  args.push('--variable', `platform_keys=${createHash('sha256').update(PLATFORM_KEY).digest('hex')}`);
  service = spawn(CLI, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`hooksign serve did not start: ${output}`)), 30000);
    service.stdout.on('data', (chunk) => {
      output += chunk;
      const found = /serving (http:\/\/\S+)/.exec(output);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    service.on('exit', (code) => reject(new Error(`hooksign serve exited (${code}): ${output}`)));
    void receiverPort;
  });
}

/** Calls the API directly (not through the page). */
async function api(method, path, key = KEY, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** Whether a delivery's signature header has a v1 entry made with `secret`. */
function signedWith(delivery, secret) {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const signed = `${delivery.headers['webhook-id']}.${delivery.headers['webhook-timestamp']}.${delivery.body}`;
  const expected = createHmac('sha256', key).update(signed).digest();
  return delivery.headers['webhook-signature'].split(' ').some((entry) => {
    const given = Buffer.from(entry.replace(/^v1,/, ''), 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** Whether a delivery's signature header has a v1a entry that `publicKey` (`whpk_`) verifies. */
function signedBy(delivery, publicKey) {
  const x = Buffer.from(publicKey.replace(/^whpk_/, ''), 'base64').toString('base64url');
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
  const signed = Buffer.from(`${delivery.headers['webhook-id']}.${delivery.headers['webhook-timestamp']}.${delivery.body}`);
  return delivery.headers['webhook-signature'].split(' ').some((entry) =>
    entry.startsWith('v1a,') && verify(null, signed, key, Buffer.from(entry.slice(4), 'base64')));
}

async function screenshot(page, name) {
  if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** A fresh page that fails the test on any script error or CSP violation. */
async function newPage(viewport = { width: 1100, height: 800 }) {
  const context = await browser.newContext({ viewport });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (error) => page.errors.push(String(error)));
  // A value written as text where an element or a string was meant
  // ("null", "undefined", "[object Object]") is an error on every view;
  // payloads shown in <pre> may hold a JSON null.
  await page.addInitScript(() => {
    const junk = /\b(null|undefined)\b|\[object Object\]/;
    const check = (node) => {
      const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
      for (let text = walker.currentNode; text; text = walker.nextNode()) {
        if (text.nodeType === Node.TEXT_NODE && junk.test(text.data) && !text.parentElement?.closest('pre')) {
          console.error(`junk text on the page: ${JSON.stringify(text.data)}`);
        }
      }
    };
    new MutationObserver((records) => {
      for (const record of records) for (const node of record.addedNodes) check(node);
    }).observe(document, { childList: true, subtree: true });
  });
  // Refused requests (a wrong key, a field error) are logged by the
  // browser as failed loads: expected here. Anything else (a script error,
  // a blocked inline script or style) is not.
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      page.errors.push(message.text());
    }
  });
  return page;
}

async function signIn(page, key = KEY) {
  await page.goto(`${base}/`);
  await page.getByLabel('API key').fill(key);
  await page.getByLabel('API key').press('Enter');
}

before(async () => {
  assert.ok(CLI, 'HOOKSIGN_CLI names the hooksign binary');
  receiver = await startReceiver();
  base = await startService(receiver.address().port);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Root in CI has no user namespace sandbox; the rest keeps chromium off
    // the (closed) network.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  await browser?.close();
  service?.kill();
  receiver?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('the page is served with a strict policy and fitting caches', async () => {
  const home = await fetch(`${base}/`, { redirect: 'manual' });
  assert.equal(home.status, 302);
  assert.equal(home.headers.get('location'), '/dashboard');
  const page = await fetch(`${base}/dashboard`);
  assert.equal(page.status, 200);
  const policy = page.headers.get('content-security-policy');
  assert.match(policy, /^default-src 'self'/);
  assert.doesNotMatch(policy, /unsafe/);
  assert.equal(page.headers.get('cache-control'), 'no-cache');
  const html = await page.text();
  const script = /src="(\/dashboard\/app\.js\?v=[0-9a-f]+)"/.exec(html)[1];
  const asset = await fetch(`${base}${script}`);
  assert.equal(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.match(asset.headers.get('content-type'), /^text\/javascript/);
});

test('no view writes null, undefined or [object Object] as text', async () => {
  const created = await api('POST', '/webhooks', KEY, {
    url: `http://127.0.0.1:${receiver.address().port}/views`,
  });
  await api('POST', '/events', KEY, { type: 'view.checked', data: { none: null }, id: 'evt_views' });
  const page = await newPage();
  // The page's text but for payloads (<pre>), which may hold a JSON null.
  const text = () =>
    page.evaluate(() => {
      const copy = document.body.cloneNode(true);
      for (const pre of copy.querySelectorAll('pre')) pre.remove();
      return copy.textContent;
    });
  const clean = async (view) => {
    assert.doesNotMatch(await text(), /\b(null|undefined)\b|\[object Object\]/, view);
  };
  await page.goto(`${base}/`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await clean('sign-in');
  await signIn(page);
  await page.getByRole('heading', { name: 'Endpoints' }).waitFor();
  await clean('endpoints');
  await page.goto(`${base}/dashboard#/endpoints/${created.body.endpoint.id}`);
  await page.getByRole('heading', { name: 'Attempts' }).waitFor();
  await clean('endpoint');
  await page.goto(`${base}/dashboard#/messages`);
  await page.getByRole('link', { name: 'evt_views' }).waitFor();
  await clean('messages');
  await page.goto(`${base}/dashboard#/messages/evt_views`);
  await page.getByRole('heading', { name: 'Deliveries' }).waitFor();
  await clean('message, outside its payload');
  await page.goto(`${base}/dashboard#/api-keys`);
  await page.getByRole('heading', { name: 'API keys' }).waitFor();
  await clean('API keys');
  await page.goto(`${base}/dashboard#/event-types`);
  await page.getByRole('heading', { name: 'Event types' }).waitFor();
  await clean('event types');
  await page.goto(`${base}/dashboard#/endpoints/ep_missing`);
  await page.getByRole('heading', { name: 'Could not load this page' }).waitFor();
  await clean('error');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await clean('signed out');
  await api('DELETE', `/webhooks/${created.body.endpoint.id}`);
  assert.deepEqual(page.errors, []);
});

test('sign in, create an endpoint, test send, rotate, pause, attempts, delete', async () => {
  const page = await newPage();
  // A wrong key is refused with the API's words, and not kept.
  await signIn(page, 'sgn_live_not-a-key');
  await page.getByRole('alert').getByText('Invalid credentials').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);

  await page.getByLabel('API key').fill(KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Endpoints' }).waitFor();
  await page.getByText('No endpoints yet.').waitFor();
  // The key is in this tab's sessionStorage only: not in the URL, a cookie or the page.
  assert.equal(await page.evaluate(() => sessionStorage.getItem('hooksign.apiKey')), KEY);
  assert.equal(await page.evaluate(() => document.cookie), '');
  assert.ok(!page.url().includes(KEY));
  assert.ok(!(await page.content()).includes(KEY));

  // A field error is shown next to its field.
  await page.getByLabel('URL').fill('ftp://example.com/hook');
  await page.getByRole('button', { name: 'Create endpoint' }).click();
  await page.locator('.field-error').first().waitFor();
  assert.equal(await page.getByLabel('URL').getAttribute('aria-invalid'), 'true');

  const receiverUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
  await page.getByLabel('URL').fill(receiverUrl);
  await page.getByLabel('Description').fill('Orders service');
  await page.getByLabel('Event types').fill('order.paid, order.refunded');
  await page.getByRole('button', { name: 'Create endpoint' }).click();
  await page.getByRole('heading', { name: 'Signing secret' }).first().waitFor();
  const secret = (await page.locator('code.secret').textContent()).trim();
  assert.match(secret, /^whsec_/);
  await page.getByRole('button', { name: 'Copy' }).click();
  await page.getByText('Copied.').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await screenshot(page, 'endpoint-created');

  // A test send shows the receiver's answer; it was signed with that secret.
  received = [];
  await page.getByRole('button', { name: 'Send a test' }).click();
  await page.getByRole('heading', { name: 'The receiver answered 200' }).waitFor();
  await page.getByRole('cell', { name: 'dashboard-test' }).waitFor();
  await page.getByText('{"received":true}').waitFor();
  assert.equal(received.length, 1);
  assert.ok(signedWith(received[0], secret));
  await page.getByRole('cell', { name: 'test send' }).first().waitFor();

  // Shown once: on coming back, the secret is nowhere on the page.
  await page.getByRole('link', { name: 'Endpoints', exact: true }).click();
  await page.getByRole('link', { name: receiverUrl }).click();
  await page.getByRole('heading', { name: 'Attempts' }).waitFor();
  assert.ok(!(await page.content()).includes(secret));

  // Rotate with no grace: a new secret, and only it signs from now on.
  await page.getByLabel('The old secret stays valid for').selectOption('0');
  await page.getByRole('button', { name: 'Rotate secret' }).click();
  await page.getByRole('heading', { name: 'New signing secret' }).waitFor();
  const rotated = (await page.locator('code.secret').textContent()).trim();
  assert.notEqual(rotated, secret);
  received = [];
  await page.getByRole('button', { name: 'Send a test' }).click();
  await page.getByRole('heading', { name: 'The receiver answered 200' }).waitFor();
  assert.ok(signedWith(received[0], rotated));
  assert.ok(!signedWith(received[0], secret));

  // Pause and resume.
  await page.getByRole('button', { name: 'Pause' }).click();
  await page.getByText('Paused', { exact: true }).waitFor();
  const id = new URL(page.url()).hash.split('/')[2];
  assert.equal((await api('GET', `/webhooks/${id}`)).body.paused, true);
  await page.getByRole('button', { name: 'Resume' }).click();
  await page.getByText('Active', { exact: true }).waitFor();
  assert.equal((await api('GET', `/webhooks/${id}`)).body.paused, false);

  // An event's attempt appears in the table on refresh.
  const event = await api('POST', '/events', KEY, { type: 'order.paid', data: { order: 42 } });
  assert.equal(event.status, 202);
  await page.getByRole('button', { name: 'Refresh', exact: true }).click();
  await page.getByRole('link', { name: 'order.paid #1' }).waitFor();
  await screenshot(page, 'endpoint');

  // Editing shows the change; deleting asks first.
  await page.getByLabel('Description').fill('Orders service (v2)');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.getByText('Orders service (v2)', { exact: true }).waitFor();
  await page.getByRole('button', { name: 'Delete endpoint' }).click();
  await page.getByRole('button', { name: 'Cancel' }).click();
  assert.equal((await api('GET', `/webhooks/${id}`)).status, 200);
  await page.getByRole('button', { name: 'Delete endpoint' }).click();
  await page.getByRole('button', { name: 'Yes, delete endpoint' }).click();
  await page.getByText('No endpoints yet.').waitFor();
  assert.equal((await api('GET', `/webhooks/${id}`)).status, 404);
  assert.deepEqual(page.errors, []);
});

test('messages: the log, one message, resend', async () => {
  const created = await api('POST', '/webhooks', KEY, {
    url: `http://127.0.0.1:${receiver.address().port}/orders`,
  });
  await api('POST', '/events', KEY, { type: 'invoice.sent', data: { invoice: 7 }, id: 'evt_dashboard' });
  const page = await newPage();
  await signIn(page);
  await page.getByRole('link', { name: 'Messages', exact: true }).click();
  await page.getByRole('link', { name: 'evt_dashboard' }).click();
  await page.getByRole('heading', { name: 'Deliveries' }).waitFor();
  await page.getByText('"invoice": 7').waitFor();
  await screenshot(page, 'message');
  received = [];
  await page.getByRole('button', { name: 'Resend' }).click();
  await page.getByText('Resent.').waitFor();
  const deadline = Date.now() + 10000;
  while (!received.some((delivery) => delivery.headers['webhook-id'] === 'evt_dashboard')) {
    assert.ok(Date.now() < deadline, 'the resend never came');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // The filter by type.
  await page.getByRole('link', { name: 'Messages', exact: true }).click();
  await page.getByLabel('Event type').fill('nothing.like.it');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByText('No messages.').waitFor();
  await api('DELETE', `/webhooks/${created.body.endpoint.id}`);
  assert.deepEqual(page.errors, []);
});

test('API keys: create once, use, revoke, refused', async () => {
  const page = await newPage();
  await signIn(page);
  await page.getByRole('link', { name: 'API keys', exact: true }).click();
  await page.getByText('bootstrap (the api_keys variable)').waitFor();
  await page.getByLabel('Name').fill('CI robot');
  await page.getByRole('button', { name: 'Create key' }).click();
  await page.getByRole('heading', { name: 'API key “CI robot”' }).waitFor();
  const minted = (await page.locator('code.secret').textContent()).trim();
  assert.match(minted, /^sgn_live_/);
  assert.equal((await api('GET', '/webhooks', minted)).status, 200);
  await screenshot(page, 'api-keys');
  // Another tab signed in with the new key.
  const robot = await newPage();
  await signIn(robot, minted);
  await robot.getByRole('heading', { name: 'Endpoints' }).waitFor();
  await page.getByRole('button', { name: 'Revoke' }).click();
  await page.getByRole('button', { name: 'Yes, revoke' }).click();
  await page.getByText(/^revoked /).waitFor();
  assert.ok(!(await page.content()).includes(minted));
  assert.equal((await api('GET', '/webhooks', minted)).status, 401);

  // That tab's next call is refused: it is signed out, and told why.
  await robot.getByRole('link', { name: 'Messages', exact: true }).click();
  await robot.getByRole('alert').getByText(/^Signed out: Invalid credentials/).waitFor();
  assert.equal(await robot.evaluate(() => sessionStorage.length), 0);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API key').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assert.deepEqual(page.errors, []);
});

/** A page that records every request it makes: URL and headers. */
async function recordingPage() {
  const page = await newPage();
  page.requests = [];
  page.on('request', (request) => page.requests.push({ url: request.url(), headers: request.headers() }));
  return page;
}

test('a dashboard link signs in as its organisation, once, and ends with it', async () => {
  assert.equal((await api('POST', '/orgs', PLATFORM_KEY, { id: 'globex', name: 'Globex Corp' })).status, 201);
  const hook = `http://127.0.0.1:${receiver.address().port}/globex`;
  const endpoint = await api('POST', '/orgs/globex/webhooks', PLATFORM_KEY, { url: hook });
  assert.equal(endpoint.status, 201);
  const link = await api('POST', '/orgs/globex/dashboard-links', PLATFORM_KEY, {});
  assert.equal(link.status, 201);
  const { url } = link.body;
  const token = url.split('#link=')[1];
  assert.match(token, /^sgn_link_/);

  const page = await recordingPage();
  await page.goto(url);
  await page.getByRole('heading', { name: 'Endpoints' }).waitFor();
  await page.getByText(hook).waitFor();
  await page.getByText('Globex Corp').waitFor();
  assert.ok(!page.url().includes(token));
  // Reloaded, the tab stays signed in.
  await page.reload();
  await page.getByText(hook).waitFor();
  // A session mints no keys: the page does not offer it.
  await page.getByRole('link', { name: 'API keys', exact: true }).click();
  await page.getByText(/API keys are minted and revoked with an API key/).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Create key' }).count(), 0);
  await screenshot(page, 'dashboard-link');
  // The token went out once, as the exchange's credential: never in an
  // address, a Referer or any other request.
  const carrying = page.requests.filter((request) => JSON.stringify(request).includes(token));
  assert.deepEqual(carrying.map((request) => new URL(request.url).pathname), ['/dashboard/sessions']);
  assert.ok(carrying.every((request) => !request.url.includes(token) && !(request.headers.referer || '').includes(token)));

  // A second open is refused, and says why.
  const second = await newPage();
  await second.goto(url);
  await second.getByRole('alert').getByText(/opened before/).waitFor();
  assert.equal(await second.evaluate(() => sessionStorage.length), 0);
  // So is an expired link.
  const brief = await api('POST', '/orgs/globex/dashboard-links', PLATFORM_KEY, { ttlSeconds: 1 });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const late = await newPage();
  await late.goto(brief.body.url);
  await late.getByRole('alert').getByText(/expired/).waitFor();

  // Deleting the organisation ends the session at its next request.
  assert.equal((await api('DELETE', '/orgs/globex', PLATFORM_KEY)).status, 204);
  await page.getByRole('link', { name: 'Endpoints', exact: true }).click();
  await page.getByRole('alert').getByText(/^Signed out: .*session has ended/).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  for (const tab of [page, second, late]) assert.deepEqual(tab.errors, []);
});

test('a phone-width screen needs no sideways scrolling', async () => {
  await api('POST', '/webhooks', KEY, {
    url: `http://127.0.0.1:${receiver.address().port}/a-rather-long-path/for/a/narrow/screen`,
    eventTypes: ['order.paid'],
  });
  const page = await newPage({ width: 375, height: 740 });
  await signIn(page);
  await page.getByRole('heading', { name: 'Endpoints' }).waitFor();
  await page.getByRole('table').waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  // Keyboard only: Tab reaches the endpoint's link, Enter opens it.
  let focused = '';
  for (let presses = 0; presses < 30 && !focused.includes('narrow'); presses += 1) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() =>
      document.activeElement?.tagName === 'A' ? document.activeElement.textContent : '',
    );
  }
  assert.match(focused, /narrow/);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Attempts' }).waitFor();
  await screenshot(page, 'phone');
  assert.deepEqual(page.errors, []);
});

test('a v1a endpoint shows its public key, never a secret, and its test sends verify with it', async () => {
  const page = await newPage();
  await signIn(page);
  const receiverUrl = `http://127.0.0.1:${receiver.address().port}/ed25519`;
  await page.getByLabel('URL').fill(receiverUrl);
  await page.getByLabel('Signature').selectOption('v1a');
  await page.getByRole('button', { name: 'Create endpoint' }).click();
  await page.getByText('v1a (Ed25519)').waitFor();
  assert.equal(await page.locator('code.secret').count(), 0);
  const publicKey = (await page.locator('code.public-key').textContent()).trim();
  assert.match(publicKey, /^whpk_/);
  assert.ok(!(await page.content()).includes('whsk_'));

  received = [];
  await page.getByRole('button', { name: 'Send a test' }).click();
  await page.getByRole('heading', { name: 'The receiver answered 200' }).waitFor();
  assert.ok(signedBy(received[0], publicKey));
  await screenshot(page, 'endpoint-v1a');

  // Rotating keeps the old public key valid for the chosen grace, and shows the new one.
  await page.getByLabel('The old key stays valid for').selectOption('3600');
  await page.getByRole('button', { name: 'Rotate key' }).click();
  await page.waitForFunction((old) => document.querySelector('code.public-key')?.textContent !== old, publicKey);
  const rotated = (await page.locator('code.public-key').textContent()).trim();
  assert.match(rotated, /^whpk_/);
  received = [];
  await page.getByRole('button', { name: 'Send a test' }).click();
  await page.getByRole('heading', { name: 'The receiver answered 200' }).waitFor();
  assert.ok(signedBy(received[0], rotated));
  assert.ok(signedBy(received[0], publicKey));
  const stranger = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x;
  assert.ok(!signedBy(received[0], `whpk_${Buffer.from(stranger, 'base64url').toString('base64')}`));
  assert.deepEqual(page.errors, []);
});

test('the catalogue, custom headers, a rate limit, operational events and recovery', async () => {
  const page = await newPage();
  await signIn(page);
  await page.getByRole('link', { name: 'Event types', exact: true }).click();
  await page.getByText('No event types: endpoints may subscribe to any.').waitFor();
  await page.getByLabel('Name').fill('invoice.paid');
  await page.getByLabel('JSON Schema of its data').fill('{"type":"object","required":["total"]}');
  await page.getByRole('button', { name: 'Add event type' }).click();
  await page.getByRole('cell', { name: 'invoice.paid' }).waitFor();
  assert.equal((await api('POST', '/events', KEY, { type: 'invoice.paid', data: {} })).status, 422);

  // The endpoint form offers the catalogue's types and the operational ones.
  await page.getByRole('link', { name: 'Endpoints', exact: true }).click();
  const receiverUrl = `http://127.0.0.1:${receiver.address().port}/catalogue`;
  await page.getByLabel('URL').fill(receiverUrl);
  await page.getByLabel('invoice.paid').check();
  await page.getByLabel(/^hooksign\.endpoint\.disabled/).check();
  await page.getByLabel('Rate limit (sends a second)').fill('7');
  await page.getByRole('button', { name: 'Create endpoint' }).click();
  await page.getByText('7 sends a second').waitFor();
  await page.getByText('invoice.paid, hooksign.endpoint.disabled').waitFor();

  // Custom headers: one shown, one sensitive (never on the page again).
  await page.getByLabel('Header name').fill('X-Tenant');
  await page.getByLabel('Value', { exact: true }).fill('acme-eu');
  await page.getByRole('button', { name: 'Set header' }).click();
  await page.getByRole('cell', { name: 'acme-eu' }).waitFor();
  await page.getByLabel('Header name').fill('Authorization');
  await page.getByLabel('Value', { exact: true }).fill('Bearer dash-s3cret');
  await page.getByLabel('Kind').selectOption('sensitive');
  await page.getByRole('button', { name: 'Set header' }).click();
  await page.getByText('sensitive: sealed, never shown').waitFor();
  assert.ok(!(await page.content()).includes('dash-s3cret'));
  received = [];
  await page.getByRole('button', { name: 'Send a test' }).click();
  await page.getByText(/Succeeded/).first().waitFor();
  const sent = received.find((request) => request.headers['x-tenant']);
  assert.equal(sent.headers.authorization, 'Bearer dash-s3cret');
  await screenshot(page, 'endpoint-headers');

  // Recover since an hour ago: nothing failed here, and it says so.
  const hourAgo = new Date(Date.now() - 3600_000);
  const local = new Date(hourAgo.getTime() - hourAgo.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  await page.getByLabel('Failed since').fill(local);
  await page.getByRole('button', { name: 'Recover' }).click();
  await page.getByText('0 failed deliveries will be sent again, oldest first.').waitFor();

  // Operational events are in the message log like any event.
  await page.getByRole('link', { name: 'Messages', exact: true }).click();
  await page.getByRole('heading', { name: 'Messages' }).waitFor();
  assert.equal((await api('DELETE', '/event-types/invoice.paid', KEY)).status, 204);
  assert.deepEqual(page.errors, []);
});
