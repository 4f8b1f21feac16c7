// Browser test of the wschat chat page against the real server (issue 6).
//
// Starts target/release/wschat on a free port, drives Debian's headless
// Chromium through playwright-core, and walks through the chat as people
// would: join, talk, hostile input, a refused name, backlog, leaving, a
// server restart on the same port, phone width, and no console errors.
//
// Run it with scripts/browser-test (installs Chromium and node_modules and
// builds the server first). Environment overrides, for debugging only:
//   WSCHAT_BIN       server binary (default: <repo>/target/release/wschat)
//   CHROMIUM_PATH    browser (default: /usr/bin/chromium)
//
// Every wait below is bounded (T ms) and waits on an event, a stdout line or
// a DOM condition; nothing sleeps for a fixed time.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const ARTIFACTS = path.join(HERE, 'artifacts');
const SERVER_BIN = process.env.WSCHAT_BIN || path.join(ROOT, 'target', 'release', 'wschat');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const T = 15_000; // upper bound for any single wait
const DESKTOP = { width: 1100, height: 700 };
const PHONE = { width: 375, height: 720 };

// ------------------------------------------------------------------ server

let server = null; // { proc, port, stderr: string[] }
const serverLog = [];
// History in a temporary directory, the same across the restart below (so the page's
// reconnect meets the stored backlog), removed when the test process ends.
const DATA_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'wschat-history-'));
process.on('exit', () => fs.rmSync(DATA_DIR, { recursive: true, force: true }));

/** Start the server and resolve once its first stdout line names the port. */
async function startServer(addr) {
  const proc = spawn(SERVER_BIN, ['--addr', addr, '--data', DATA_DIR], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (chunk) => serverLog.push(chunk));
  const lines = readline.createInterface({ input: proc.stdout });
  const first = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening on" line within ${T} ms`)), T);
    lines.once('line', (line) => { clearTimeout(timer); resolve(line); });
    proc.once('error', (err) => { clearTimeout(timer); reject(err); });
    proc.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`server exited before listening (code ${code}, signal ${sig})`));
    });
  });
  // Keep draining stdout so the pipe never fills up.
  lines.on('line', (line) => serverLog.push('[stdout] ' + line + '\n'));
  const line = await first;
  const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)\/$/.exec(line);
  assert.ok(m, `unexpected first stdout line: ${JSON.stringify(line)}`);
  return { proc, port: Number(m[1]) };
}

/** SIGTERM the server and wait (bounded) for it to exit; SIGKILL as a last resort. */
async function stopServer(srv) {
  if (!srv || srv.proc.exitCode !== null || srv.proc.signalCode !== null) {
    return srv ? { code: srv.proc.exitCode, signal: srv.proc.signalCode } : null;
  }
  const exited = once(srv.proc, 'exit');
  srv.proc.kill('SIGTERM');
  const timer = setTimeout(() => srv.proc.kill('SIGKILL'), T);
  const [code, signal] = await exited;
  clearTimeout(timer);
  return { code, signal };
}

// Never leave a server behind, even if the runner is torn down abruptly.
function killServerNow() {
  if (server && server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill('SIGKILL');
}
process.on('exit', killServerNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => { killServerNow(); process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1)); });
}

// ----------------------------------------------------------------- browser

let context = null;
let userDataDir = null;
const pages = {}; // name -> Page
const consoleErrors = []; // { page, text }
const dialogs = []; // { page, message }
// While the server is deliberately down (step 7) Chromium logs the refused
// WebSocket handshakes of the page's reconnect attempts as console errors
// ("WebSocket connection to 'ws://…/chat' failed: …"). They are expected then,
// and only then; we ignore exactly that message for exactly that URL.
let restartWindow = false;

function expectedRestartNoise(text) {
  if (!restartWindow || !server) return false;
  const url = `ws://127.0.0.1:${server.port}/chat`;
  return text.startsWith(`WebSocket connection to '${url}' failed`);
}

async function openPage(label, viewport = DESKTOP) {
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  await page.setViewportSize(viewport);
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    if (expectedRestartNoise(msg.text())) return;
    consoleErrors.push({ page: label, text: msg.text() });
  });
  page.on('pageerror', (err) => consoleErrors.push({ page: label, text: 'pageerror: ' + err.message }));
  page.on('dialog', (d) => {
    dialogs.push({ page: label, message: d.message() });
    d.dismiss().catch(() => {});
  });
  await page.goto(`http://127.0.0.1:${server.port}/`, { timeout: T });
  pages[label] = page;
  return page;
}

async function shot(page, file) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, file), timeout: T });
}

// ----------------------------------------------------------- page helpers

async function submitName(page, name) {
  await page.fill('#name-input', name);
  await page.press('#name-input', 'Enter');
}

/** Wait until the page is in the room as `name` and says so. */
async function waitJoined(page, name) {
  await page.waitForFunction((n) => {
    const s = document.getElementById('status');
    const me = document.querySelector('#members li[data-self="true"]');
    return s.dataset.state === 'connected' && me && me.dataset.name === n
      && !document.getElementById('chat-view').hidden;
  }, name, { timeout: T });
}

async function waitState(page, states) {
  await page.waitForFunction((ss) => ss.includes(document.getElementById('status').dataset.state),
    states, { timeout: T });
}

async function send(page, text) {
  await page.fill('#message-input', text);
  await page.press('#message-input', 'Enter');
  await page.waitForFunction(() => document.getElementById('message-input').value === '', null, { timeout: T });
}

/** All chat messages in the log, in order. */
function messages(page) {
  return page.$$eval('#log .entry[data-kind="message"]', (els) => els.map((e) => ({
    from: e.dataset.from,
    shownFrom: e.querySelector('.from').textContent,
    text: e.querySelector('.text').textContent,
    own: e.dataset.own === 'true',
    backlog: e.dataset.backlog === 'true',
  })));
}

async function waitMessage(page, from, text) {
  await page.waitForFunction(([f, t]) => [...document.querySelectorAll('#log .entry[data-kind="message"]')]
    .some((e) => e.dataset.from === f && e.querySelector('.text').textContent === t), [from, text], { timeout: T })
    .catch(async (err) => {
      const have = (await messages(page)).map((m) => `${m.from}: ${m.text.slice(0, 60)}`);
      throw new Error(`no message ${JSON.stringify(text.slice(0, 60))} from ${from}; log has ${JSON.stringify(have)}: ${err.message}`);
    });
}

async function waitNotice(page, kind, name) {
  await page.waitForFunction(([k, n]) => [...document.querySelectorAll(`#log .entry[data-kind="${k}"]`)]
    .some((e) => e.dataset.name === n), [kind, name], { timeout: T });
}

function memberNames(page) {
  return page.$$eval('#members li', (lis) => lis.map((li) => li.dataset.name));
}

async function waitMembers(page, expected) {
  const want = [...expected].sort();
  await page.waitForFunction((w) => {
    const got = [...document.querySelectorAll('#members li')].map((li) => li.dataset.name).sort();
    return JSON.stringify(got) === JSON.stringify(w);
  }, want, { timeout: T }).catch(async (err) => {
    throw new Error(`members: wanted ${JSON.stringify(want)}, have ${JSON.stringify(await memberNames(page))}: ${err.message}`);
  });
}

// ------------------------------------------------------------------- steps

const XSS_IMG = '<img src=x onerror=alert(1)>';
const XSS_B = '<b>bold</b>';

describe('wschat chat page in headless Chromium', { timeout: 240_000 }, () => {
  let failed = false;
  // Steps share one room, so after a failure the rest would only fail noisily.
  const step = (name, fn) => test(name, { timeout: 60_000 }, async (t) => {
    if (failed) { t.skip('an earlier step failed'); return; }
    try { await fn(t); } catch (err) { failed = true; throw err; }
  });

  before(async () => {
    assert.ok(fs.existsSync(SERVER_BIN), `server binary missing: ${SERVER_BIN} (run cargo build --release)`);
    assert.ok(fs.existsSync(CHROMIUM), `browser missing: ${CHROMIUM}`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer('127.0.0.1:0');
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wschat-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: T,
      viewport: DESKTOP,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
    });
  });

  after(async () => {
    // Always clean up, in this order, even when a step failed.
    try { if (context) await context.close(); } catch (err) { console.error('closing browser:', err.message); }
    const res = await stopServer(server);
    if (failed || (res && res.code !== 0)) {
      console.error('--- server log (tail) ---\n' + serverLog.join('').slice(-4000));
    }
    fs.writeFileSync(path.join(ARTIFACTS, 'server.log'), serverLog.join(''));
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  step('1. alice and bob join and see each other', async () => {
    const a = await openPage('alice');
    assert.equal(await a.getAttribute('#status', 'data-state'), 'disconnected');
    await submitName(a, 'alice');
    await waitJoined(a, 'alice');
    await waitMembers(a, ['alice']);
    // No room in the address: the lobby, as the server's welcome says.
    assert.equal(await a.evaluate(() => document.body.dataset.room), 'lobby');
    assert.equal(await a.locator('#room-label').textContent(), '#lobby');

    const b = await openPage('bob');
    await submitName(b, 'bob');
    await waitJoined(b, 'bob');
    await waitNotice(a, 'join', 'bob'); // alice sees bob arrive
    await waitMembers(a, ['alice', 'bob']);
    await waitMembers(b, ['alice', 'bob']); // bob learns of alice from "welcome"
  });

  step('2. a message reaches bob with alice\'s name and shows once for alice', async () => {
    const { alice: a, bob: b } = pages;
    await send(a, 'hello from alice');
    await waitMessage(b, 'alice', 'hello from alice');
    // Once alice has bob's reply, anything the server sent her for her own
    // message (it must not echo) would already have arrived before it.
    await send(b, 'hi alice');
    await waitMessage(a, 'bob', 'hi alice');

    const onB = (await messages(b)).filter((m) => m.text === 'hello from alice');
    assert.deepEqual(onB.map((m) => [m.from, m.shownFrom, m.own]), [['alice', 'alice', false]]);
    const onA = (await messages(a)).filter((m) => m.text === 'hello from alice');
    assert.equal(onA.length, 1, 'alice sees her own message exactly once');
    assert.ok(onA[0].own, 'it is marked as her own');
  });

  step('3. markup in messages is shown as text, never run', async () => {
    const { alice: a, bob: b } = pages;
    await send(a, XSS_IMG);
    await send(a, XSS_B);
    await waitMessage(b, 'alice', XSS_IMG);
    await waitMessage(b, 'alice', XSS_B);
    for (const [label, p] of [['alice', a], ['bob', b]]) {
      assert.equal(await p.locator('#log img, #log b, #log script').count(), 0, `${label}: no elements from message text`);
      assert.equal(await p.locator('#members img, #members b').count(), 0);
    }
    assert.ok((await b.locator('#log').innerText()).includes(XSS_IMG), 'the literal text is visible');
    assert.deepEqual(dialogs, [], 'no dialog opened');
    await shot(b, 'desktop-bob.png');
  });

  step('4. a second "alice" is refused and can pick another name', async () => {
    const c = await openPage('carol');
    await submitName(c, 'alice');
    const err = c.locator('#name-error');
    await err.waitFor({ state: 'visible', timeout: T });
    assert.ok((await err.textContent()).trim().length > 0, 'the refusal reason is shown');
    assert.ok(await c.locator('#name-form').isVisible(), 'the name form is offered again');
    assert.ok(await c.locator('#chat-view').isHidden());
    await shot(c, 'name-refused.png');

    await submitName(c, 'carol');
    await waitJoined(c, 'carol');
    assert.ok(await err.isHidden(), 'the error goes away');
    await waitNotice(pages.alice, 'join', 'carol');
    await waitMembers(pages.alice, ['alice', 'bob', 'carol']);
    await waitMembers(c, ['alice', 'bob', 'carol']);
  });

  step('5. a newcomer sees the backlog, in order', async () => {
    // carol joined after the messages above, so they reach her as backlog.
    const c = pages.carol;
    const want = [
      ['alice', 'hello from alice'], ['bob', 'hi alice'], ['alice', XSS_IMG], ['alice', XSS_B],
    ];
    await waitMessage(c, 'alice', XSS_B);
    const got = await messages(c);
    assert.deepEqual(got.map((m) => [m.from, m.text]), want);
    assert.ok(got.every((m) => m.backlog && !m.own), 'marked as backlog');
    assert.equal(await c.locator('#log img, #log b').count(), 0);
  });

  step('6. bob leaves and alice sees it', async () => {
    await pages.bob.close();
    await waitNotice(pages.alice, 'leave', 'bob');
    await waitMembers(pages.alice, ['alice', 'carol']);
    await waitMembers(pages.carol, ['alice', 'carol']);
  });

  step('7. after a server restart on the same port the pages reconnect by themselves', async () => {
    const { alice: a, carol: c } = pages;
    const port = server.port;
    restartWindow = true;
    const res = await stopServer(server);
    assert.deepEqual(res, { code: 0, signal: null }, 'graceful shutdown exits 0 on SIGTERM');

    for (const p of [a, c]) await waitState(p, ['reconnecting', 'connecting', 'disconnected']);
    await a.waitForFunction(() => /reconnecting in \d+ s/i.test(document.getElementById('status').textContent),
      null, { timeout: T });
    assert.equal(await a.locator('#message-send').isDisabled(), true, 'cannot send while offline');
    await shot(a, 'desktop-reconnecting.png');

    server = await startServer(`127.0.0.1:${port}`);
    await waitJoined(a, 'alice'); // the same name is sent again automatically
    await waitJoined(c, 'carol');
    restartWindow = false;
    await waitMembers(a, ['alice', 'carol']);
    await waitMembers(c, ['alice', 'carol']);

    await send(a, 'back after the restart');
    await waitMessage(c, 'alice', 'back after the restart');
    await send(c, 'welcome back');
    await waitMessage(a, 'carol', 'welcome back');
    // Nothing from before the restart was shown twice.
    const onA = await messages(a);
    assert.equal(onA.filter((m) => m.text === 'hello from alice').length, 1);
    await shot(a, 'desktop-alice.png');
  });

  step('8. at 375 px the page fits and the input is usable', async () => {
    const { alice: a, carol: c } = pages;
    await a.setViewportSize(PHONE);
    const long = 'x'.repeat(400);
    const url = 'https://example.invalid/' + 'very-long-path-segment/'.repeat(12);
    await send(c, long);
    await send(c, url);
    await waitMessage(a, 'carol', url);
    await send(a, 'typed at phone width');
    await waitMessage(c, 'alice', 'typed at phone width');

    const m = await a.evaluate(() => {
      const r = document.getElementById('message-input').getBoundingClientRect();
      const entries = [...document.querySelectorAll('#log .entry')].map((e) => e.getBoundingClientRect().right);
      return {
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
        innerHeight: window.innerHeight,
        input: { left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width },
        widestEntry: Math.max(...entries),
      };
    });
    assert.equal(m.innerWidth, PHONE.width);
    assert.ok(m.scrollWidth <= m.innerWidth, `no horizontal scroll (scrollWidth ${m.scrollWidth})`);
    assert.ok(await a.locator('#message-input').isVisible());
    assert.ok(m.input.left >= 0 && m.input.right <= m.innerWidth, `input inside viewport horizontally ${JSON.stringify(m.input)}`);
    assert.ok(m.input.top >= 0 && m.input.bottom <= m.innerHeight, `input inside viewport vertically ${JSON.stringify(m.input)}`);
    assert.ok(m.input.width >= 150, 'input is wide enough to type in');
    assert.ok(m.widestEntry <= m.innerWidth, 'long words wrap inside the viewport');
    await shot(a, 'phone-alice.png');
    await c.setViewportSize(PHONE);
    await shot(c, 'phone-carol.png');

    // The name form at phone width, and joining from it.
    const d = await openPage('dave', PHONE);
    await d.locator('#name-input').waitFor({ state: 'visible', timeout: T });
    const fits = await d.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    assert.ok(fits, 'name form: no horizontal scroll');
    await shot(d, 'phone-name.png');
    await submitName(d, 'dave');
    await waitJoined(d, 'dave');
    await waitNotice(a, 'join', 'dave');
  });

  step('9. no console errors or dialogs on any page', async () => {
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(dialogs, []);
  });
});
