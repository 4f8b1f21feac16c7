// Browser test of the inspector page (/inspect, issue 15) against the real server.
//
// Starts target/release/wschat on a free port and drives Debian's headless Chromium through
// playwright-core. The handshake Chromium really sent is read through the DevTools protocol
// (Network.webSocketWillSendHandshakeRequest), and the accept value is computed here with
// node:crypto, independently of the server. Frames are checked from the page's DOM (data
// attributes): the unmasked bytes are the text sent, masked XOR key gives the unmasked bytes,
// and 125/126/65,536-byte messages use the 7/16/64-bit length encodings.
//
// Run it with scripts/browser-test. Environment overrides, for debugging only:
//   WSCHAT_BIN       server binary (default: <repo>/target/release/wschat)
//   CHROMIUM_PATH    browser (default: /usr/bin/chromium)
//   INSPECT_SCREENSHOT  also write the README's screenshot to this path
//
// Every wait is bounded (T ms) and waits on an event, a stdout line or a DOM condition.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
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
const T = 15_000;
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const SHOWN = 128; // payload bytes the inspector keeps of each frame

// ------------------------------------------------------------------ server

let server = null;
const serverLog = [];

async function startServer() {
  const proc = spawn(SERVER_BIN, ['--addr', '127.0.0.1:0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (chunk) => serverLog.push(chunk));
  const lines = readline.createInterface({ input: proc.stdout });
  const first = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening on" line within ${T} ms`)), T);
    lines.once('line', (line) => { clearTimeout(timer); resolve(line); });
    proc.once('error', (err) => { clearTimeout(timer); reject(err); });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (code ${code})`)); });
  });
  lines.on('line', (line) => serverLog.push('[stdout] ' + line + '\n'));
  const line = await first;
  const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)\/$/.exec(line);
  assert.ok(m, `unexpected first stdout line: ${JSON.stringify(line)}`);
  return { proc, port: Number(m[1]) };
}

async function stopServer(srv) {
  if (!srv || srv.proc.exitCode !== null || srv.proc.signalCode !== null) return;
  const exited = once(srv.proc, 'exit');
  srv.proc.kill('SIGTERM');
  const timer = setTimeout(() => srv.proc.kill('SIGKILL'), T);
  await exited;
  clearTimeout(timer);
}

process.on('exit', () => {
  if (server && server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill('SIGKILL');
});

// ----------------------------------------------------------------- browser

let context = null;
let userDataDir = null;
const consoleErrors = [];

/**
 * Opens /inspect with a DevTools session that records the WebSocket handshake Chromium sends
 * and the reply it receives, as Chromium itself reports them.
 */
async function openInspector(label, viewport = { width: 1000, height: 900 }) {
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  await page.setViewportSize(viewport);
  page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(`${label}: ${msg.text()}`); });
  page.on('pageerror', (err) => consoleErrors.push(`${label}: pageerror: ${err.message}`));
  const cdp = await context.newCDPSession(page);
  const seen = { requests: [], responses: [] };
  cdp.on('Network.webSocketWillSendHandshakeRequest', (e) => seen.requests.push(e.request.headers));
  cdp.on('Network.webSocketHandshakeResponseReceived', (e) => seen.responses.push(e.response));
  await cdp.send('Network.enable');
  await page.goto(`http://127.0.0.1:${server.port}/inspect`, { timeout: T });
  await page.waitForFunction(() => document.getElementById('status').dataset.state === 'connected'
    && document.getElementById('accept').dataset.value);
  return { page, seen };
}

/** A header from CDP's header object, whatever case Chromium used for its name. */
function header(headers, name) {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : headers[key];
}

async function shot(page, file) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, file), timeout: T });
}

// ------------------------------------------------------------ DOM helpers

/** Every frame card the page shows, from its data attributes. */
function frames(page) {
  return page.$$eval('#frames .frame', (cards) => cards.map((c) => ({ ...c.dataset })));
}

/** Waits for a frame card matching every attribute in `want` and returns it. */
async function waitFrame(page, want) {
  const handle = await page.waitForFunction((w) => {
    for (const card of document.querySelectorAll('#frames .frame')) {
      if (Object.entries(w).every(([k, v]) => card.dataset[k] === v)) return { ...card.dataset };
    }
    return null;
  }, want, { timeout: T }).catch(async (err) => {
    const have = (await frames(page)).map((f) => `${f.dir} ${f.op} len=${f.len}`);
    throw new Error(`no frame ${JSON.stringify(want)}; the page shows ${JSON.stringify(have)}: ${err.message}`);
  });
  return handle.jsonValue();
}

const hexBytes = (hex) => Buffer.from(hex, 'hex');

/** Checks the masking arithmetic of a frame the browser sent: wire XOR key = payload. */
function assertUnmasking(frame) {
  assert.equal(frame.masked, 'true', 'a browser masks every frame');
  const key = hexBytes(frame.mask);
  assert.equal(key.length, 4);
  const wire = hexBytes(frame.wire);
  const unmasked = Buffer.from(wire.map((b, i) => b ^ key[i % 4]));
  assert.deepEqual(unmasked, hexBytes(frame.payload), 'masked XOR masking key = unmasked');
}

/** The text the page's sized-message buttons send. */
function sized(size) {
  const unit = '0123456789abcdefghijklmnopqrstuvwxyz';
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

// ------------------------------------------------------------------- steps

describe('wschat inspector page in headless Chromium', { timeout: 180_000 }, () => {
  let failed = false;
  const step = (name, fn) => test(name, { timeout: 60_000 }, async (t) => {
    if (failed) { t.skip('an earlier step failed'); return; }
    try { await fn(t); } catch (err) { failed = true; throw err; }
  });
  const pages = {};

  before(async () => {
    assert.ok(fs.existsSync(SERVER_BIN), `server binary missing: ${SERVER_BIN} (run cargo build --release)`);
    assert.ok(fs.existsSync(CHROMIUM), `browser missing: ${CHROMIUM}`);
    server = await startServer();
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wschat-inspect-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: T,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
    });
  });

  after(async () => {
    try { if (context) await context.close(); } catch (err) { console.error('closing browser:', err.message); }
    await stopServer(server);
    if (failed) console.error('--- server log (tail) ---\n' + serverLog.join('').slice(-4000));
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    fs.writeFileSync(path.join(ARTIFACTS, 'inspect-server.log'), serverLog.join(''));
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  step('1. the chat page links to the inspector', async () => {
    const page = await context.newPage();
    page.setDefaultTimeout(T);
    await page.goto(`http://127.0.0.1:${server.port}/`, { timeout: T });
    await Promise.all([page.waitForURL(/\/inspect$/), page.click('header a[href="/inspect"]')]);
    await page.waitForSelector('#status[data-state="connected"]');
    await page.close();
  });

  step('2. the page shows the key Chromium sent and the accept value computed from it', async () => {
    const { page, seen } = await openInspector('alice');
    pages.alice = page;
    assert.equal(seen.requests.length, 1, 'one WebSocket handshake');
    const key = header(seen.requests[0], 'Sec-WebSocket-Key');
    assert.match(key, /^[A-Za-z0-9+/]{22}==$/, 'Chromium sent a 16-byte key');

    const sha1 = createHash('sha1').update(key + GUID).digest();
    const accept = sha1.toString('base64');
    const shown = await page.evaluate(() => ({
      key: document.getElementById('key').dataset.value,
      keyGuid: document.getElementById('key-guid').textContent,
      sha1: document.getElementById('sha1').dataset.hex,
      accept: document.getElementById('accept').dataset.value,
      reply: document.getElementById('reply').dataset.raw,
      lines: [...document.querySelectorAll('#request .line')].map((li) => ({
        text: li.querySelector('.text').textContent,
        item: li.dataset.item,
        status: li.dataset.status,
      })),
    }));
    assert.equal(shown.key, key, 'the key as sent');
    assert.equal(shown.keyGuid, key + GUID);
    assert.equal(shown.sha1, sha1.toString('hex'), 'SHA-1 as 20 bytes of hex');
    assert.equal(shown.sha1.length, 40);
    assert.equal(shown.accept, accept, 'base64 of the SHA-1');
    assert.equal(header(seen.responses[0].headers, 'Sec-WebSocket-Accept'), accept,
      'what Chromium received is what the page shows');
    assert.ok(shown.reply.startsWith('HTTP/1.1 101 Switching Protocols\r\n'), shown.reply);
    assert.ok(shown.reply.includes(`\r\nSec-WebSocket-Accept: ${accept}\r\n`), shown.reply);

    // The request line by line, as Chromium sent it, with the 4.2.1 items.
    assert.equal(shown.lines[0].text, 'GET /inspect/ws HTTP/1.1');
    assert.deepEqual([shown.lines[0].item, shown.lines[0].status], ['1', 'passed']);
    const line = (name) => shown.lines.find((l) => l.text.toLowerCase().startsWith(name.toLowerCase() + ':'));
    for (const [name, item] of [['Host', '2'], ['Upgrade', '3'], ['Connection', '4'],
      ['Sec-WebSocket-Key', '5'], ['Sec-WebSocket-Version', '6']]) {
      const l = line(name);
      assert.ok(l, `a ${name} line`);
      assert.deepEqual([l.item, l.status], [item, 'passed'], name);
      assert.equal(l.text.slice(name.length + 2), header(seen.requests[0], name), `${name} as sent`);
    }
    assert.equal(line('Sec-WebSocket-Key').text, `Sec-WebSocket-Key: ${key}`);
    // Chromium offers permessage-deflate; wschat declines it.
    assert.equal(line('Sec-WebSocket-Extensions').status, 'declined');
    assert.equal(await page.locator('#proxy-note').isHidden(), true, 'no proxy in between');
    await shot(page, 'inspect-handshake.png');
  });

  step('3. a text shows as sent: unmasked bytes are the text, masked XOR key gives them', async () => {
    const page = pages.alice;
    const text = 'Hello, inspector — ünïcödé ✓';
    await page.fill('#text-input', text);
    await page.click('#send-text');
    const utf8 = Buffer.from(text, 'utf8');
    const sent = await waitFrame(page, { dir: 'in', op: 'text', len: String(utf8.length) });
    assert.deepEqual(hexBytes(sent.payload), utf8, 'the unmasked payload is the text');
    assertUnmasking(sent);
    assert.notEqual(sent.wire, sent.payload, 'on the wire the bytes are masked');
    assert.equal(sent.fin, 'true');
    assert.equal(sent.lenBits, '7');
    const card = page.locator(`#frames .frame[data-dir="in"][data-len="${utf8.length}"] dd.text`);
    assert.equal(await card.textContent(), text);

    const echo = await waitFrame(page, { dir: 'out', op: 'text', len: String(utf8.length) });
    assert.equal(echo.masked, 'false', 'a server does not mask');
    assert.equal(echo.mask, '');
    assert.deepEqual(hexBytes(echo.payload), utf8, 'the echo carries the same bytes');
    assert.equal(echo.wire, echo.payload);
  });

  step('4. 125, 126 and 65,536 bytes use the 7-, 16- and 64-bit length encodings', async () => {
    const page = pages.alice;
    for (const [size, bits] of [[125, '7'], [126, '16'], [65536, '64']]) {
      await page.click(`#send-${size}`);
      const sent = await waitFrame(page, { dir: 'in', op: 'text', len: String(size) });
      assert.equal(sent.lenBits, bits, `${size} bytes from the browser`);
      assertUnmasking(sent);
      const shown = Math.min(size, SHOWN);
      assert.deepEqual(hexBytes(sent.payload), Buffer.from(sized(size).slice(0, shown)));
      assert.equal(sent.cut, String(size > SHOWN));
      const echo = await waitFrame(page, { dir: 'out', op: 'text', len: String(size) });
      assert.equal(echo.lenBits, bits, `${size} bytes from the server`);
      // The header bytes say so too: 7 bits of 126 or 127, then 2 or 8 bytes of length.
      const head = hexBytes(await page.locator(`#frames .frame[data-dir="out"][data-len="${size}"] .byte .hex`)
        .allTextContents().then((hex) => hex.join('')));
      const expected = { 7: [size], 16: [126, size >> 8, size & 0xff], 64: [127, 0, 0, 0, 0, 0, 1, 0, 0] }[bits];
      assert.deepEqual([...head.subarray(1)], expected, `header of the ${size}-byte echo`);
    }
    const cut = page.locator('#frames .frame[data-dir="in"][data-len="65536"] dt', { hasText: 'first 128 of 65,536' });
    assert.equal(await cut.count(), 1, 'a large payload says how much of it is shown');
  });

  step('5. binary messages, and a ping the page asks for, answered by the browser', async () => {
    const page = pages.alice;
    await page.click('#send-binary');
    const binary = await waitFrame(page, { dir: 'in', op: 'binary', len: '16' });
    assertUnmasking(binary);
    await waitFrame(page, { dir: 'out', op: 'binary', len: '16', payload: binary.payload });

    await page.click('#send-ping');
    const ping = await waitFrame(page, { dir: 'out', op: 'ping' });
    const pong = await waitFrame(page, { dir: 'in', op: 'pong' });
    assert.equal(pong.payload, ping.payload, 'a pong carries its ping\'s payload');
    assertUnmasking(pong);
  });

  step('6. a second visitor sees only their own connection', async () => {
    const { page: bob, seen } = await openInspector('bob');
    pages.bob = bob;
    const aliceKey = await pages.alice.evaluate(() => document.getElementById('key').dataset.value);
    const bobKey = header(seen.requests[0], 'Sec-WebSocket-Key');
    assert.notEqual(bobKey, aliceKey);
    assert.equal(await bob.evaluate(() => document.getElementById('key').dataset.value), bobKey);
    await bob.fill('#text-input', 'only bob says this');
    await bob.click('#send-text');
    await waitFrame(bob, { dir: 'out', op: 'text', payload: Buffer.from('only bob says this').toString('hex') });
    // Alice's page never saw bob's bytes, and bob's page starts with his own frames only.
    // (A page in a background tab gets no animation frames, which Playwright waits on.)
    await pages.alice.bringToFront();
    await pages.alice.fill('#text-input', 'alice again');
    await pages.alice.click('#send-text');
    await waitFrame(pages.alice, { dir: 'out', payload: Buffer.from('alice again').toString('hex') });
    const bobHex = Buffer.from('only bob').toString('hex');
    assert.ok((await frames(pages.alice)).every((f) => !f.payload.includes(bobHex)));
    const bobFrames = await frames(bob);
    assert.deepEqual(bobFrames.map((f) => [f.dir, f.n]).sort(), [['in', '1'], ['out', '1']]);
  });

  step('7. a close shows its code and reason, both ways', async () => {
    const page = pages.alice;
    await page.bringToFront();
    await page.fill('#close-code', '4321');
    await page.fill('#close-reason', 'bye for now');
    await page.click('#close');
    await page.waitForFunction(() => document.getElementById('status').dataset.state === 'closed');
    // The browser drops messages once it has sent its close, so the reports of the close
    // frames come over HTTP after the close event.
    await page.waitForFunction(() => document.getElementById('frames').dataset.afterClose === 'fetched');
    const close = await waitFrame(page, { dir: 'in', op: 'close', closeCode: '4321' });
    assertUnmasking(close);
    assert.deepEqual(hexBytes(close.payload), Buffer.concat([Buffer.from([0x10, 0xe1]), Buffer.from('bye for now')]),
      'the code in two bytes, big-endian, then the reason');
    const reason = page.locator('#frames .frame[data-dir="in"][data-close-code="4321"] dd.text');
    assert.equal(await reason.textContent(), 'bye for now');
    // The server's close frame answers with the same code (section 5.5.1), unmasked.
    const answer = await waitFrame(page, { dir: 'out', op: 'close', closeCode: '4321' });
    assert.equal(answer.masked, 'false');
    assert.match(await page.locator('#closed').textContent(), /close code 4321 with reason "bye for now"/);
    // Each frame once, however it reached the page; every number in order, none missing.
    const all = await frames(page);
    for (const dir of ['in', 'out']) {
      const numbers = all.filter((f) => f.dir === dir).map((f) => Number(f.n)).sort((a, b) => a - b);
      assert.deepEqual(numbers, numbers.map((_, i) => i + 1), `${dir} frames 1..${numbers.length}`);
    }
    assert.equal(all.filter((f) => f.op === 'close').length, 2);
    await shot(page, 'inspect-closed.png');
  });

  step('8. at 375 px the page fits', async () => {
    const page = pages.bob;
    await page.bringToFront();
    await page.setViewportSize({ width: 375, height: 720 });
    await page.click('#send-126');
    await waitFrame(page, { dir: 'out', len: '126' });
    const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    assert.ok(fits, 'no horizontal scroll');
    await shot(page, 'inspect-phone.png');
  });

  step('9. the README screenshot', async () => {
    const { page } = await openInspector('screenshot', { width: 1280, height: 1420 });
    await page.fill('#text-input', 'Hello');
    await page.click('#send-text');
    await waitFrame(page, { dir: 'out', op: 'text', len: '5' });
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, 'inspect.png');
    if (process.env.INSPECT_SCREENSHOT) {
      await page.screenshot({ path: process.env.INSPECT_SCREENSHOT, timeout: T });
    }
  });

  step('10. no console errors', async () => {
    assert.deepEqual(consoleErrors, []);
  });
});
