// What the rooms, presence and close-code tests share: the real server on a free port,
// Debian's headless Chromium, and waits on what the chat page shows. (chat.test.mjs keeps its
// own copies, as it was written first.)
//
// Every wait is bounded (T ms) and waits on an event, a stdout line or a DOM condition.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..', '..');
export const ARTIFACTS = path.join(HERE, 'artifacts');
export const SERVER_BIN = process.env.WSCHAT_BIN || path.join(ROOT, 'target', 'release', 'wschat');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const T = 15_000; // upper bound for any single wait
export const DESKTOP = { width: 1100, height: 700 };
export const PHONE = { width: 375, height: 720 };

// ------------------------------------------------------------------ server

const running = new Set();

// History goes to temporary directories only, never to a default data directory; they are
// removed when the test process ends.
const dataDirs = [];
process.on('exit', () => {
  for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A new empty directory for a server's history, removed when the process ends. */
export function tempDataDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wschat-history-'));
  dataDirs.push(dir);
  return dir;
}

/** Starts the server with `args` (which include `--addr`), its stderr and stdout going to the
 * array `log`, and resolves once its first stdout line names the port. */
export async function startServer(args, log = []) {
  assert.ok(fs.existsSync(SERVER_BIN), `server binary missing: ${SERVER_BIN} (run cargo build --release)`);
  if (!args.includes('--data') && !args.includes('--ephemeral')) args = [...args, '--data', tempDataDir()];
  const proc = spawn(SERVER_BIN, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (chunk) => log.push(chunk));
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
  lines.on('line', (line) => log.push('[stdout] ' + line + '\n'));
  const line = await first;
  const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)\/$/.exec(line);
  assert.ok(m, `unexpected first stdout line: ${JSON.stringify(line)}`);
  return { proc, port: Number(m[1]), log };
}

/** SIGTERM the server and wait (bounded) for it to exit; SIGKILL as a last resort. */
export async function stopServer(srv) {
  if (!srv) return null;
  const { proc } = srv;
  if (proc.exitCode !== null || proc.signalCode !== null) return { code: proc.exitCode, signal: proc.signalCode };
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), T);
  const [code, signal] = await exited;
  clearTimeout(timer);
  return { code, signal };
}

// Never leave a server behind, even if the runner is torn down abruptly.
function killAllNow() {
  for (const proc of running) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
}
process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => { killAllNow(); process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1)); });
}

// ----------------------------------------------------------------- browser

/** Headless Chromium in a fresh profile; `close()` also removes the profile. */
export async function launchBrowser() {
  assert.ok(fs.existsSync(CHROMIUM), `browser missing: ${CHROMIUM}`);
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wschat-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: T,
    viewport: DESKTOP,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      try { await context.close(); } finally { fs.rmSync(userDataDir, { recursive: true, force: true }); }
    },
  };
}

/** Opens `url` in a new page that records console errors, page errors and dialogs in
 * `problems` (each `{ page, text }`), except console errors `expected(text)` accepts. */
export async function openPage(context, label, url, problems, { viewport = DESKTOP, expected = () => false } = {}) {
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  await page.setViewportSize(viewport);
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !expected(msg.text())) problems.push({ page: label, text: msg.text() });
  });
  page.on('pageerror', (err) => problems.push({ page: label, text: 'pageerror: ' + err.message }));
  page.on('dialog', (d) => {
    problems.push({ page: label, text: 'dialog: ' + d.message() });
    d.dismiss().catch(() => {});
  });
  await page.goto(url, { timeout: T });
  return page;
}

export async function shot(page, file) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, file), timeout: T });
}

// ----------------------------------------------------------- page helpers

export async function submitName(page, name) {
  await page.fill('#name-input', name);
  await page.press('#name-input', 'Enter');
}

/** Waits until the page is in room `room` as `name`, as the server's welcome said. */
export async function waitJoined(page, name, room) {
  await page.waitForFunction(([n, r]) => {
    const s = document.getElementById('status');
    const me = document.querySelector('#members li[data-self="true"]');
    return s.dataset.state === 'connected' && me && me.dataset.name === n
      && document.body.dataset.room === r && !document.getElementById('chat-view').hidden;
  }, [name, room], { timeout: T }).catch(async (err) => {
    const seen = await page.evaluate(() => ({
      state: document.getElementById('status').dataset.state,
      room: document.body.dataset.room,
      me: document.querySelector('#members li[data-self="true"]')?.dataset.name,
      log: document.getElementById('log').innerText.slice(-500),
    }));
    throw new Error(`not joined to ${r(room)} as ${name}: ${JSON.stringify(seen)}: ${err.message}`);
  });
}

const r = (room) => '#' + room;

export async function send(page, text) {
  await page.fill('#message-input', text);
  await page.press('#message-input', 'Enter');
  await page.waitForFunction(() => document.getElementById('message-input').value === '', null, { timeout: T });
}

/** All chat messages in the log, in order. */
export function messages(page) {
  return page.$$eval('#log .entry[data-kind="message"]', (els) => els.map((e) => ({
    from: e.dataset.from,
    text: e.querySelector('.text').textContent,
    own: e.dataset.own === 'true',
    backlog: e.dataset.backlog === 'true',
    notSent: e.dataset.notSent === 'true',
  })));
}

export async function waitMessage(page, from, text) {
  await page.waitForFunction(([f, t]) => [...document.querySelectorAll('#log .entry[data-kind="message"]')]
    .some((e) => e.dataset.from === f && e.querySelector('.text').textContent === t), [from, text], { timeout: T })
    .catch(async (err) => {
      const have = (await messages(page)).map((m) => `${m.from}: ${m.text.slice(0, 60)}`);
      throw new Error(`no message ${JSON.stringify(text.slice(0, 60))} from ${from}; log has ${JSON.stringify(have)}: ${err.message}`);
    });
}

/** Join and leave notices in the log, in order, as [kind, name]. */
export function notices(page) {
  return page.$$eval('#log .entry[data-kind="join"], #log .entry[data-kind="leave"]',
    (els) => els.map((e) => [e.dataset.kind, e.dataset.name]));
}

export async function waitNotice(page, kind, name) {
  await page.waitForFunction(([k, n]) => [...document.querySelectorAll(`#log .entry[data-kind="${k}"]`)]
    .some((e) => e.dataset.name === n), [kind, name], { timeout: T });
}

export function memberNames(page) {
  return page.$$eval('#members li', (lis) => lis.map((li) => li.dataset.name));
}

export async function waitMembers(page, expected) {
  const want = [...expected].sort();
  await page.waitForFunction((w) => {
    const got = [...document.querySelectorAll('#members li')].map((li) => li.dataset.name).sort();
    return JSON.stringify(got) === JSON.stringify(w);
  }, want, { timeout: T }).catch(async (err) => {
    throw new Error(`members: wanted ${JSON.stringify(want)}, have ${JSON.stringify(await memberNames(page))}: ${err.message}`);
  });
}

/** Runs the steps of a describe block in order; after a failure the rest are skipped, since
 * each builds on the state the previous ones left. Returns the step function and a getter
 * for whether one failed. */
export function stepper(test) {
  let failed = false;
  const step = (name, fn, { timeout = 60_000 } = {}) => test(name, { timeout }, async (t) => {
    if (failed) { t.skip('an earlier step failed'); return; }
    try { await fn(t); } catch (err) { failed = true; throw err; }
  });
  return { step, failed: () => failed };
}
