// wschat behind the shipped nginx site (deploy/nginx-wschat.conf), in headless Chromium.
//
// Run by scripts/proxy-test, which installs nginx and Chromium, builds the server, makes a
// throw-away certificate for chat.example.com and passes its paths in the environment:
//   NGINX                  nginx binary
//   PROXY_TEST_WORK        a temporary directory for nginx's files
//   PROXY_TEST_CERT/_KEY   the certificate and its key
//   WSCHAT_BIN, CHROMIUM_PATH  as in chat.test.mjs
//
// The nginx site is the shipped file with only its ports, certificate paths and wschat's port
// replaced (each replacement must match exactly once, so an edit of the shipped file cannot
// silently leave the test running something else). Chromium resolves chat.example.com and
// evil.example to 127.0.0.1, so the page, its Origin and the Host nginx passes on look as they
// would on a real server, only on other ports.
//
// Every wait is bounded (T ms) and waits on an event, a stdout/stderr line, a file or a DOM
// condition; nothing sleeps for a fixed time.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const ARTIFACTS = path.join(HERE, 'artifacts');
const SERVER_BIN = process.env.WSCHAT_BIN || path.join(ROOT, 'target', 'release', 'wschat');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const NGINX = process.env.NGINX || '/usr/sbin/nginx';
const WORK = process.env.PROXY_TEST_WORK;
const CERT = process.env.PROXY_TEST_CERT;
const KEY = process.env.PROXY_TEST_KEY;
const SITE = path.join(ROOT, 'deploy', 'nginx-wschat.conf');
const HOST = 'chat.example.com';
const OTHER_HOST = 'evil.example';
const T = 15_000; // upper bound for any single wait

// ------------------------------------------------------------------ logs

/** A child's output lines, with a bounded wait for one that matches. */
class Lines {
  constructor() { this.lines = []; this.waiters = []; }
  push(line) {
    this.lines.push(line);
    this.waiters = this.waiters.filter((w) => !(w.re.test(line) && (w.resolve(line), true)));
  }
  /** Resolves with the first line matching `re` among those from index `from` on (seen
   * already or still to come). */
  wait(re, what, from = 0) {
    const seen = this.lines.slice(from).find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} within ${T} ms; last lines:\n${this.lines.slice(-15).join('\n')}`)), T);
      this.waiters.push({ re, resolve: (l) => { clearTimeout(timer); resolve(l); } });
    });
  }
}

function pipeLines(stream, sink, prefix = '') {
  readline.createInterface({ input: stream }).on('line', (line) => sink.push(prefix + line));
}

// ------------------------------------------------------------------ wschat

const wschatLog = new Lines();
let wschat = null; // { proc, port }

// History in a temporary directory, kept across the restart, removed when the process ends.
const DATA_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'wschat-proxy-history-'));
process.on('exit', () => fs.rmSync(DATA_DIR, { recursive: true, force: true }));

async function startWschat(addr) {
  const proc = spawn(SERVER_BIN, ['--addr', addr, '--trusted-proxy', '127.0.0.1', '--data', DATA_DIR],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  pipeLines(proc.stderr, wschatLog);
  const lines = readline.createInterface({ input: proc.stdout });
  const first = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`wschat: no "listening on" line within ${T} ms`)), T);
    lines.once('line', (line) => { clearTimeout(timer); resolve(line); });
    proc.once('error', (err) => { clearTimeout(timer); reject(err); });
    proc.once('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`wschat exited at start (${code}, ${sig})`)); });
  });
  const line = await first;
  const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)\/$/.exec(line);
  assert.ok(m, `unexpected first stdout line: ${JSON.stringify(line)}`);
  return { proc, port: Number(m[1]) };
}

/** SIGTERM a child and wait (bounded) for it; SIGKILL as a last resort. */
async function stop(proc) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) {
    return proc ? { code: proc.exitCode, signal: proc.signalCode } : null;
  }
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), T);
  const [code, signal] = await exited;
  clearTimeout(timer);
  return { code, signal };
}

// ------------------------------------------------------------------ nginx

const nginxLog = new Lines();
let nginx = null; // { proc, port, plainPort, dir }

/** A port that was free a moment ago (nginx binds it next; a clash is retried). */
async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** `text` with `from` replaced by `to`, insisting that `from` occurs exactly once. */
function replaceOnce(text, from, to) {
  const count = text.split(from).length - 1;
  assert.equal(count, 1, `${path.relative(ROOT, SITE)}: expected "${from}" exactly once, found it ${count} times`);
  return text.replace(from, () => to);
}

/** The shipped site with this test's ports and certificate: nothing else changes. */
function renderSite(tlsPort, plainPort, upstreamPort) {
  let site = fs.readFileSync(SITE, 'utf8');
  site = replaceOnce(site, 'listen 443 ssl;', `listen 127.0.0.1:${tlsPort} ssl;`);
  site = replaceOnce(site, 'listen [::]:443 ssl;', '# listen [::]:443 ssl; (loopback IPv4 only in the test)');
  site = replaceOnce(site, 'listen 80;', `listen 127.0.0.1:${plainPort};`);
  site = replaceOnce(site, 'listen [::]:80;', '# listen [::]:80; (loopback IPv4 only in the test)');
  site = replaceOnce(site, '/etc/letsencrypt/live/chat.example.com/fullchain.pem', CERT);
  site = replaceOnce(site, '/etc/letsencrypt/live/chat.example.com/privkey.pem', KEY);
  site = replaceOnce(site, 'proxy_pass http://127.0.0.1:8080;', `proxy_pass http://127.0.0.1:${upstreamPort};`);
  return site;
}

/** The main configuration around the site: what /etc/nginx/nginx.conf is on a server. */
function mainConfig(dir) {
  return `# Generated by tests/browser/proxy.test.mjs: one process in the foreground, files in ${dir}.
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  include ${dir}/wschat.conf;
}
`;
}

/** Resolves once `file` exists (nginx writes its pid file after binding its ports). */
function waitForFile(file, proc) {
  return new Promise((resolve, reject) => {
    const dir = path.dirname(file);
    let watcher = null;
    const done = (err) => { clearTimeout(timer); if (watcher) watcher.close(); proc.off('exit', onExit); err ? reject(err) : resolve(); };
    const onExit = (code, sig) => done(new Error(`nginx exited (${code}, ${sig})`));
    const timer = setTimeout(() => done(new Error(`${file} not written within ${T} ms`)), T);
    proc.once('exit', onExit);
    watcher = fs.watch(dir, () => { if (fs.existsSync(file)) done(); });
    if (fs.existsSync(file)) done();
  });
}

async function startNginx(upstreamPort) {
  const dir = path.join(WORK, 'nginx');
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'nginx.conf'), mainConfig(dir));
  const args = ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', path.join(dir, 'nginx.conf')];
  let lastError = null;
  for (let attempt = 0; attempt < 5; attempt++) {
    const [port, plainPort] = [await freePort(), await freePort()];
    fs.writeFileSync(path.join(dir, 'wschat.conf'), renderSite(port, plainPort, upstreamPort));
    const check = spawnSync(NGINX, ['-t', ...args], { encoding: 'utf8', timeout: T });
    assert.equal(check.status, 0, `nginx -t failed:\n${check.stderr}`);
    fs.rmSync(path.join(dir, 'nginx.pid'), { force: true });
    const proc = spawn(NGINX, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    pipeLines(proc.stdout, nginxLog, '[stdout] ');
    pipeLines(proc.stderr, nginxLog, '[stderr] ');
    try {
      await waitForFile(path.join(dir, 'nginx.pid'), proc);
      return { proc, port, plainPort, dir };
    } catch (err) {
      // Most likely a port taken between freePort() and nginx's bind: try others.
      lastError = err;
      await stop(proc);
    }
  }
  throw new Error(`nginx did not start: ${lastError && lastError.message}\n${readTail(path.join(dir, 'error.log'))}`);
}

function readTail(file) {
  try { return fs.readFileSync(file, 'utf8').slice(-3000); } catch { return `(no ${file})`; }
}

/** One HTTPS request to nginx as `chat.example.com`, from `localAddress`. */
function request(method, target, { headers = {}, localAddress = '127.0.0.1', port = nginx.port, tls = true } = {}) {
  return new Promise((resolve, reject) => {
    const options = {
      host: '127.0.0.1', port, method, path: target, localAddress, timeout: T,
      headers: { Host: `${HOST}:${port}`, ...headers },
    };
    if (tls) Object.assign(options, { servername: HOST, rejectUnauthorized: false });
    const req = (tls ? https : http).request(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${target}: no answer within ${T} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** A `lookup` for Node's sockets that resolves every name to 127.0.0.1, as Chromium's
 * --host-resolver-rules do for the pages. */
function resolveToLoopback(hostname, options, callback) {
  if (options && options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
}

// ------------------------------------------------------------------ a page on another origin

let otherSite = null; // http.Server serving the cross-site page

async function startOtherSite(wssUrl) {
  const page = `<!doctype html><meta charset="utf-8"><title>waiting</title>
<p>A page on another site that tries to use the visitor's browser against the chat.</p>
<script>
  const ws = new WebSocket(${JSON.stringify(wssUrl)});
  ws.onopen = () => { document.title = 'opened'; ws.close(); };
  ws.onclose = (e) => { if (document.title !== 'opened') document.title = 'closed ' + e.code; };
</script>`;
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(page);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

// ------------------------------------------------------------------ browser

let context = null;
let userDataDir = null;
const pages = {};
const consoleErrors = [];
let restartWindow = false;

/** Console errors that are expected: the refused cross-site handshake on the other site's
 * page, and the page's reconnect attempts while wschat is down (nginx answers 502). */
function expectedNoise(label, text) {
  const chatUrl = `wss://${HOST}:${nginx.port}/chat`;
  if (label === 'other-site') {
    return text.startsWith(`WebSocket connection to '${chatUrl}' failed`) && text.includes('403');
  }
  return restartWindow && text.startsWith(`WebSocket connection to '${chatUrl}' failed`);
}

async function openPage(label, url) {
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !expectedNoise(label, msg.text())) consoleErrors.push({ page: label, text: msg.text() });
  });
  page.on('pageerror', (err) => consoleErrors.push({ page: label, text: 'pageerror: ' + err.message }));
  await page.goto(url, { timeout: T });
  pages[label] = page;
  return page;
}

const chatUrl = () => `https://${HOST}:${nginx.port}/`;

async function join(page, name) {
  await page.fill('#name-input', name);
  await page.press('#name-input', 'Enter');
  await waitJoined(page, name);
}

async function waitJoined(page, name) {
  await page.waitForFunction((n) => {
    const s = document.getElementById('status');
    const me = document.querySelector('#members li[data-self="true"]');
    return s.dataset.state === 'connected' && me && me.dataset.name === n;
  }, name, { timeout: T });
}

async function send(page, text) {
  await page.fill('#message-input', text);
  await page.press('#message-input', 'Enter');
  await page.waitForFunction(() => document.getElementById('message-input').value === '', null, { timeout: T });
}

async function waitMessage(page, from, text) {
  await page.waitForFunction(([f, t]) => [...document.querySelectorAll('#log .entry[data-kind="message"]')]
    .some((e) => e.dataset.from === f && e.querySelector('.text').textContent === t), [from, text], { timeout: T });
}

async function waitState(page, states) {
  await page.waitForFunction((ss) => ss.includes(document.getElementById('status').dataset.state), states, { timeout: T });
}

// ------------------------------------------------------------------ steps

describe('wschat behind the shipped nginx site, over wss:// in headless Chromium', { timeout: 240_000 }, () => {
  let failed = false;
  const step = (name, fn) => test(name, { timeout: 60_000 }, async (t) => {
    if (failed) { t.skip('an earlier step failed'); return; }
    try { await fn(t); } catch (err) { failed = true; throw err; }
  });

  before(async () => {
    for (const [what, value] of [['PROXY_TEST_WORK', WORK], ['PROXY_TEST_CERT', CERT], ['PROXY_TEST_KEY', KEY]]) {
      assert.ok(value && fs.existsSync(value), `${what} missing: run scripts/proxy-test`);
    }
    for (const file of [SERVER_BIN, CHROMIUM, NGINX]) assert.ok(fs.existsSync(file), `missing: ${file}`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    wschat = await startWschat('127.0.0.1:0');
    nginx = await startNginx(wschat.port);
    otherSite = await startOtherSite(`wss://${HOST}:${nginx.port}/chat`);
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wschat-proxy-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: T,
      // The certificate is a throw-away one that no browser trusts.
      ignoreHTTPSErrors: true,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        `--host-resolver-rules=MAP ${HOST} 127.0.0.1, MAP ${OTHER_HOST} 127.0.0.1`,
      ],
    });
  });

  after(async () => {
    try { if (context) await context.close(); } catch (err) { console.error('closing browser:', err.message); }
    if (otherSite) otherSite.close();
    const nginxExit = nginx && await stop(nginx.proc);
    const wschatExit = wschat && await stop(wschat.proc);
    if (failed || (wschatExit && wschatExit.code !== 0) || (nginxExit && nginxExit.code !== 0)) {
      console.error('--- wschat log (tail) ---\n' + wschatLog.lines.slice(-40).join('\n'));
      if (nginx) console.error('--- nginx error log (tail) ---\n' + readTail(path.join(nginx.dir, 'error.log')));
    }
    fs.writeFileSync(path.join(ARTIFACTS, 'proxy-wschat.log'), wschatLog.lines.join('\n') + '\n');
    if (nginx) fs.copyFileSync(path.join(nginx.dir, 'error.log'), path.join(ARTIFACTS, 'proxy-nginx-error.log'));
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  step('1. health and plain HTTP through nginx', async () => {
    const health = await request('GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.body, 'ok\n');
    const redirect = await request('GET', '/some/page?x=1', { port: nginx.plainPort, tls: false });
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, `https://${HOST}/some/page?x=1`);
  });

  step('2. wschat logs the client nginx saw, not an address the client forged', async () => {
    // From 127.0.0.2 (loopback too), with a forged X-Forwarded-For: nginx appends 127.0.0.2,
    // and wschat, trusting only 127.0.0.1, takes that right-most entry.
    const page = await request('GET', '/?forged', { localAddress: '127.0.0.2', headers: { 'X-Forwarded-For': '203.0.113.66' } });
    assert.equal(page.status, 200);
    const line = await wschatLog.wait(/ GET \/\?forged 200$/, 'log line for GET /?forged');
    assert.match(line, / 127\.0\.0\.2 via 127\.0\.0\.1:\d+ GET \/\?forged 200$/);
    assert.ok(!line.includes('203.0.113.66'), line);
  });

  step('3. alice and bob chat over wss:// through nginx, both ways', async () => {
    const a = await openPage('alice', chatUrl());
    assert.equal(await a.evaluate(() => location.protocol), 'https:');
    await join(a, 'alice');
    const b = await openPage('bob', chatUrl());
    await join(b, 'bob');
    await send(a, 'hello bob, through nginx');
    await waitMessage(b, 'alice', 'hello bob, through nginx');
    await send(b, 'hi alice, over wss');
    await waitMessage(a, 'bob', 'hi alice, over wss');
    await a.screenshot({ path: path.join(ARTIFACTS, 'proxy-alice.png'), timeout: T });
  });

  step('4. after a wschat restart on the same port the pages reconnect through nginx', async () => {
    const { alice: a, bob: b } = pages;
    const port = wschat.port;
    restartWindow = true;
    assert.deepEqual(await stop(wschat.proc), { code: 0, signal: null }, 'graceful shutdown exits 0');
    for (const p of [a, b]) await waitState(p, ['reconnecting', 'connecting', 'disconnected']);
    // Meanwhile nginx has nothing to pass upgrades to.
    assert.equal((await request('GET', '/healthz')).status, 502);

    wschat = await startWschat(`127.0.0.1:${port}`);
    await waitJoined(a, 'alice');
    await waitJoined(b, 'bob');
    restartWindow = false;
    await send(a, 'back after the restart');
    await waitMessage(b, 'alice', 'back after the restart');
    await send(b, 'welcome back');
    await waitMessage(a, 'bob', 'welcome back');
  });

  step('5. a page on another site cannot open the chat (same-origin default)', async () => {
    const url = `http://${OTHER_HOST}:${otherSite.address().port}/`;
    const page = await openPage('other-site', url);
    await page.waitForFunction(() => document.title.startsWith('closed') || document.title === 'opened', null, { timeout: T });
    assert.equal(await page.title(), 'closed 1006', 'the handshake was refused');
    const line = await wschatLog.wait(/ GET \/chat 403 /, 'log line for the refused upgrade');
    assert.match(line, / via 127\.0\.0\.1:\d+ GET \/chat 403 \(cross-origin/);
    // The chat pages, same-origin, are still in the room.
    await send(pages.alice, 'still here');
    await waitMessage(pages.bob, 'alice', 'still here');
  });

  step('6. sessions are logged with the client and the proxy', async () => {
    const before = wschatLog.lines.length;
    await pages.bob.close();
    const line = await wschatLog.wait(/ GET \/chat 101 closed /, 'log line for bob\'s session', before);
    assert.match(line, / 127\.0\.0\.1 via 127\.0\.0\.1:\d+ GET \/chat 101 closed /);
  });

  step('7. a 5,000-byte chat message through nginx gets 1009, 6 runs of 6 (npm ws over wss://)', async () => {
    // Past --max-message (4096): wschat closes with 1009 while the client is still sending,
    // and the close frame must come back through nginx rather than die in a reset.
    const text = 'y'.repeat(5000);
    const got = [];
    for (let run = 0; run < 6; run++) {
      const before = wschatLog.lines.length;
      const ws = new WebSocket(`wss://${HOST}:${nginx.port}/chat`, {
        ca: fs.readFileSync(CERT), // the throw-away certificate is its own CA
        lookup: resolveToLoopback,
        handshakeTimeout: T,
      });
      const errors = [];
      ws.on('error', (err) => errors.push(err.message));
      const closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString(), errors })));
      const timer = setTimeout(() => ws.terminate(), T);
      const welcome = new Promise((resolve) => ws.once('message', (data) => resolve(JSON.parse(data.toString()))));
      await Promise.race([once(ws, 'open'), closed]);
      ws.send(`big${run}`);
      const first = await Promise.race([welcome, closed]);
      assert.equal(first.type, 'welcome', `run ${run}: ${JSON.stringify(first)}`);
      ws.send(text);
      const result = await closed;
      clearTimeout(timer);
      got.push(result);
      const line = await wschatLog.wait(/ GET \/chat 101 closed 1009 /, `run ${run}: log line for the 1009 close`, before);
      assert.match(line, / via 127\.0\.0\.1:\d+ GET \/chat 101 closed 1009 /);
    }
    assert.deepEqual(got.map((c) => c.code), Array(6).fill(1009), JSON.stringify(got));
  });

  step('8. no unexpected console errors', async () => {
    assert.deepEqual(consoleErrors, []);
  });
});
