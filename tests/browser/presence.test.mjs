// Merged presence, the member list and not-sent in the chat page (issue 13), in headless
// Chromium against the real server.
//
// How a real page falls behind: its main thread is kept busy (blocked in a synchronous request
// to a small HTTP server of the test, which answers when the test says so), as a busy or
// frozen tab would be; it then reads nothing, Chromium stops reading the socket and the
// kernel's buffers fill. A member sends filler messages until the server's socket to the page
// takes no more (`ss -tm`: what the kernel holds for it reached its send buffer), and a round
// more, which then waits in wschat's own queue for the page. Joins and leaves from then
// on wait in that queue and merge: when the page is let go, the server writes one `presence`
// event, or, after more changes than the room keeps, one `members` event. The test checks
// that those frames really arrived (Playwright's view of the page's WebSocket) and what the
// page made of them: one line per name for a small merged event, one summary line for a large
// one, the member list replaced by `members`, and a join of someone it lists and a leave of
// someone it does not, which may follow it, ignored.
//
// `not-sent` comes from a real fault: the test lowers the running server's file size limit
// (`prlimit`, RLIMIT_FSIZE) to the size its room's history file has, so the next message cannot
// be appended (EFBIG, as on a full disk) and is refused to its sender; raising the limit again
// lets the following message through.
//
// Run by scripts/browser-test. Every wait is bounded and waits on an event or DOM condition.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import WebSocket from 'ws';
import {
  ARTIFACTS, T, launchBrowser, memberNames, messages, notices, openPage, send, shot, startServer,
  stepper, stopServer, submitName, tempDataDir, waitJoined, waitMembers, waitMessage,
} from './support.mjs';

const ROOM = 'crowd';
const PAD = 'filler '.repeat(570); // 3,990 bytes, under --max-message (4096)
const CHUNK = 32; // filler messages per round, about 128 KB
const MAX_FILL_ROUNDS = 120; // about 15 MB at most; a 4 MiB socket buffer fills in about 35
// What waits in wschat's queue for the page stays far under --queue-bytes (1 MiB), past which
// the page would be closed: at most the rounds after the kernel's buffer filled, about 384 KB.

/** `promise`, or a rejection naming `what` after T ms. */
function withTimeout(promise, what) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no ${what} within ${T} ms`)), T); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------- members from Node

/** A member of ROOM driven from Node with npm ws: it reads everything and keeps it. */
class Member {
  static async join(port, name) {
    const m = new Member();
    m.name = name;
    m.ws = new WebSocket(`ws://127.0.0.1:${port}/chat/${ROOM}`, { handshakeTimeout: T });
    m.ws.on('message', (data) => m.got(JSON.parse(data.toString())));
    m.ws.on('error', () => {}); // a close follows, which the waits see
    await once(m.ws, 'open');
    m.ws.send(name);
    const welcome = await m.waitFor((e) => e.type === 'welcome' || e.type === 'name-refused', 'welcome');
    assert.equal(welcome.type, 'welcome', `${name}: ${JSON.stringify(welcome)}`);
    return m;
  }

  constructor() { this.events = []; this.waiters = []; }

  got(event) {
    this.events.push(event);
    this.waiters = this.waiters.filter((w) => !(w.match(event) && (w.resolve(event), true)));
  }

  /** The first event from now on (or already seen, from index `from`) that `match`es. */
  waitFor(match, what, from = this.events.length) {
    const seen = this.events.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no ${what} within ${T} ms`)), T);
      this.waiters.push({ match, resolve: (e) => { clearTimeout(timer); resolve(e); } });
    });
  }

  async leave() {
    this.ws.close(1000);
    await once(this.ws, 'close');
  }
}

// ---------------------------------------------------------------- the server's socket to the page

/** The server's established socket with the most bytes waiting for its peer (the blocked
 * page's): `{ sendQ, queued, sndbuf }` from `ss -tm` (Send-Q, and skmem's w and tb: what the
 * kernel holds for the socket and the most it will hold; a write waits once queued reaches
 * sndbuf). Linux only, as the test machines are. */
function fullestSocket(port) {
  const out = execFileSync('ss', ['-tnmH', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8', timeout: T });
  let fullest = { sendQ: -1, queued: 0, sndbuf: 0 };
  let last = null;
  for (const line of out.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (/^\d+$/.test(cols[0]) && /^\d+$/.test(cols[1])) {
      last = { sendQ: Number(cols[1]) };
      continue;
    }
    const mem = /skmem:\(.*\btb(\d+),.*\bw(\d+),/.exec(line);
    if (mem && last) {
      const sock = { ...last, sndbuf: Number(mem[1]), queued: Number(mem[2]) };
      if (sock.sendQ > fullest.sendQ) fullest = sock;
      last = null;
    }
  }
  return fullest;
}

describe('merged presence, the member list and not-sent in the chat page', { timeout: 480_000 }, () => {
  const { step, failed } = stepper(test);
  const serverLog = [];
  let server = null;
  const dataDir = tempDataDir();
  let browser = null;
  const problems = [];
  let page = null; // "watcher", the page that falls behind
  const frames = []; // what the page's WebSocket received, parsed
  const members = new Map(); // name -> Member, everyone in ROOM driven from Node
  let filler = null;
  let observer = null;
  let fills = 0;
  let gate = null; // http.Server whose answer the blocked page waits for
  let blocked = null; // { release(), done: Promise } while the page is blocked

  const everyone = () => ['watcher', ...members.keys()];

  async function join(name) {
    const m = await Member.join(server.port, name);
    members.set(name, m);
    return m;
  }

  async function leave(name) {
    await members.get(name).leave();
    members.delete(name);
  }

  /** Blocks the page's main thread in a synchronous request to `gate`, which answers only
   * when released: meanwhile the page runs no task, so it reads nothing from its socket. */
  async function blockPage() {
    const asked = once(gate, 'asked');
    const done = page.evaluate((url) => {
      const xhr = new XMLHttpRequest();
      xhr.open('GET', url, false); // synchronous on purpose
      xhr.send();
      return xhr.responseText;
    }, `http://127.0.0.1:${gate.address().port}/`);
    const [release] = await withTimeout(asked, 'the page\'s blocking request');
    blocked = { release, done };
  }

  /** Sends filler until the server's socket to the blocked page takes no more, then one round
   * more, which therefore waits in wschat's queue for the page: what is queued after it waits
   * too. */
  async function fillUntilBehind() {
    const round = async () => {
      const tag = `fill ${fills++}.`;
      for (let i = 0; i < CHUNK; i++) filler.ws.send(`${tag}${i} ${PAD}`);
      // Once the observer has the last one, the server has queued all of them for the page.
      const end = `${tag}${CHUNK - 1} `;
      await observer.waitFor((e) => e.type === 'message' && e.text.startsWith(end), `filler ${end}`, 0);
    };
    let sock = null;
    for (let n = 0; n < MAX_FILL_ROUNDS; n++) {
      await round();
      // The writer may be a round behind: full means full in two samples in a row.
      const full = (s) => s.queued + 64 * 1024 >= s.sndbuf;
      const was = sock;
      sock = fullestSocket(server.port);
      if (was && full(was) && full(sock)) {
        await round();
        return;
      }
    }
    throw new Error(`the server's socket to the page never filled: ${JSON.stringify(sock)}`);
  }

  async function unblockPage() {
    blocked.release();
    assert.equal(await blocked.done, 'go');
    blocked = null;
  }

  /** Waits until the page has shown the last filler message sent so far. */
  async function waitDrained() {
    const last = `fill ${fills - 1}.${CHUNK - 1} `;
    await page.waitForFunction((l) => [...document.querySelectorAll('#log .entry[data-kind="message"] .text')]
      .slice(-100).some((e) => e.textContent.startsWith(l)), last, { timeout: 30_000 });
  }

  /** The join, leave, presence and members frames the page received, from index `from` on. */
  const presenceFrames = (from) => frames.slice(from).filter((f) => ['join', 'leave', 'presence', 'members'].includes(f.type));

  before(async () => {
    server = await startServer([
      '--addr', '127.0.0.1:0', '--rate-limit', '0', '--max-connections-per-ip', '1000',
      // The page is blocked for seconds at a time: neither the heartbeat nor a write that
      // waits on it may drop it meanwhile.
      '--ping-interval', '0', '--write-timeout', '60', '--data', dataDir,
    ], serverLog);
    browser = await launchBrowser();
    gate = http.createServer((req, res) => {
      gate.emit('asked', () => {
        res.writeHead(200, { 'Access-Control-Allow-Origin': '*', 'Content-Type': 'text/plain' });
        res.end('go');
      });
    });
    gate.listen(0, '127.0.0.1');
    await once(gate, 'listening');
  });

  after(async () => {
    if (blocked) blocked.release();
    if (gate) gate.close();
    for (const m of members.values()) m.ws.terminate();
    try { if (browser) await browser.close(); } catch (err) { console.error('closing browser:', err.message); }
    const res = await stopServer(server);
    if (failed() || (res && res.code !== 0)) console.error('--- server log (tail) ---\n' + serverLog.join('').slice(-4000));
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    fs.writeFileSync(path.join(ARTIFACTS, 'presence-server.log'), serverLog.join(''));
  });

  step('1. the watcher page and members from Node are in the room', async () => {
    page = await openPage(browser.context, 'watcher', `http://127.0.0.1:${server.port}/#${ROOM}`, problems);
    page.on('websocket', (ws) => ws.on('framereceived', (f) => {
      try { frames.push(JSON.parse(f.payload)); } catch { frames.push({ type: '(not JSON)' }); }
    }));
    await submitName(page, 'watcher');
    await waitJoined(page, 'watcher', ROOM);
    observer = await join('observer');
    filler = await join('filler');
    for (const name of ['old1', 'old2', 'old3', 'old4', 'old5']) await join(name);
    await waitMembers(page, everyone());
  });

  step('2. a few changes are told one by one; a merged event of up to 20 names name by name', async () => {
    // Up to 16 changes waiting for a page that fell behind are still written one by one.
    await blockPage();
    await fillUntilBehind();
    let seen = frames.length;
    await join('new1');
    await leave('old1');
    await observer.waitFor((e) => (e.type === 'leave' && e.name === 'old1')
      || (e.type === 'presence' && e.left.includes('old1')), 'old1 leaving', 0);
    await unblockPage();
    await waitDrained();
    await waitMembers(page, everyone());
    assert.deepEqual(presenceFrames(seen), [{ type: 'join', name: 'new1' }, { type: 'leave', name: 'old1' }],
      'two changes that waited are told one by one');
    // More than 16 are merged into one presence event; with at most 20 names the page still
    // shows a line per name.
    await blockPage();
    await fillUntilBehind();
    seen = frames.length;
    const newcomers = [];
    for (let i = 2; i <= 18; i++) {
      newcomers.push(`new${i}`);
      await join(`new${i}`);
    }
    await observer.waitFor((e) => (e.type === 'join' && e.name === 'new18')
      || (e.type === 'presence' && e.joined.includes('new18')), 'new18 joining', 0);
    await unblockPage();
    await waitDrained();
    await waitMembers(page, everyone());
    const got = presenceFrames(seen);
    assert.deepEqual(got, [{ type: 'presence', joined: newcomers, left: [] }],
      'the server merged the 17 changes for the page that fell behind');
    const shown = (await notices(page)).slice(-newcomers.length);
    assert.deepEqual(shown, newcomers.map((n) => ['join', n]));
  }, { timeout: 120_000 });

  step('3. a large merged presence event is one summary line', async () => {
    await blockPage();
    await fillUntilBehind();
    const seen = frames.length;
    for (let i = 0; i < 25; i++) await join(`crowd${i}`);
    for (const name of ['old2', 'old3', 'old4']) await leave(name);
    await observer.waitFor((e) => (e.type === 'leave' && e.name === 'old4')
      || (e.type === 'presence' && e.left.includes('old4')), 'old4 leaving', 0);
    await unblockPage();
    await waitDrained();
    await waitMembers(page, everyone());
    const got = presenceFrames(seen);
    assert.equal(got.length, 1, JSON.stringify(got.map((f) => f.type)));
    assert.equal(got[0].type, 'presence');
    assert.equal(got[0].joined.length, 25);
    assert.deepEqual(got[0].left, ['old2', 'old3', 'old4']);
    const named = (await notices(page)).filter(([, n]) => /^crowd\d+$|^old[234]$/.test(n));
    assert.deepEqual(named, [], 'no line per name');
    const summary = page.locator('#log .entry[data-kind="presence"]').last();
    assert.equal(await summary.getAttribute('data-summary'), 'presence');
    assert.match(await summary.innerText(), /^25 joined, 3 left/);
    await shot(page, 'presence-summary.png');
  }, { timeout: 120_000 });

  step('4. a page that fell very far behind gets the member list, which replaces its own', async () => {
    await join('goner');
    await waitMembers(page, everyone());
    await blockPage();
    await fillUntilBehind();
    const seen = frames.length;
    await leave('old5');
    await leave('new1');
    // More joins and leaves than the room keeps (256 while few are present).
    for (let i = 0; i < 140; i++) {
      await join(`passer${i}`);
      await leave(`passer${i}`);
    }
    await join('stayer');
    // A message, so that what follows waits as a second notice behind it. The list is made
    // when it is written, after these, so it already holds latecomer and no longer goner:
    // the notices that follow it tell the page of a join of someone listed and a leave of
    // someone not listed.
    filler.ws.send('between');
    await observer.waitFor((e) => e.type === 'message' && e.text === 'between', 'between', 0);
    await join('latecomer');
    await leave('goner');
    await observer.waitFor((e) => (e.type === 'leave' && e.name === 'goner')
      || (e.type === 'presence' && e.left.includes('goner')), 'goner leaving', 0);
    await unblockPage();
    await waitDrained();
    await waitMessage(page, 'filler', 'between');
    await waitMembers(page, everyone());
    const got = presenceFrames(seen);
    assert.deepEqual(got.map((f) => f.type), ['members', 'join', 'leave'], JSON.stringify(got).slice(0, 300));
    assert.deepEqual([...got[0].members].sort(), everyone().sort(), 'the list: everyone, the page included');
    assert.deepEqual(got.slice(1), [{ type: 'join', name: 'latecomer' }, { type: 'leave', name: 'goner' }]);
    const summary = page.locator('#log .entry[data-kind="presence"]').last();
    assert.equal(await summary.getAttribute('data-summary'), 'members');
    assert.match(await summary.innerText(), /^Member list refreshed: 2 joined, 3 left/);
    // The stale join and leave change nothing and show nothing; nobody who only passed by is
    // listed or announced.
    const names = await memberNames(page);
    assert.equal(names.filter((n) => n === 'latecomer').length, 1);
    const shown = (await notices(page)).filter(([k, n]) => /^(passer\d+|latecomer|stayer)$/.test(n)
      || (k === 'leave' && n === 'goner'));
    assert.deepEqual(shown, []);
  }, { timeout: 120_000 });

  step('5. a page that keeps up still gets join and leave, one line each', async () => {
    const seen = frames.length;
    await join('late');
    await page.waitForFunction(() => [...document.querySelectorAll('#log .entry[data-kind="join"]')]
      .some((e) => e.dataset.name === 'late'), null, { timeout: T });
    await leave('late');
    await page.waitForFunction(() => [...document.querySelectorAll('#log .entry[data-kind="leave"]')]
      .some((e) => e.dataset.name === 'late'), null, { timeout: T });
    assert.deepEqual(presenceFrames(seen), [{ type: 'join', name: 'late' }, { type: 'leave', name: 'late' }]);
    await waitMembers(page, everyone());
  });

  step('6. not-sent: the message is marked, the reason shown, the text given back', async () => {
    const LOST = 'this one the disk could not take';
    /** Sets the server's file size limit (soft; the hard one stays unlimited). */
    const fileSizeLimit = (soft) => execFileSync('prlimit', ['--pid', String(server.proc.pid), `--fsize=${soft}:unlimited`],
      { timeout: T });
    const p = await openPage(browser.context, 'sender', `http://127.0.0.1:${server.port}/#${ROOM}`, problems);
    /** Sends `text` as the form does on Enter and types `next` into the emptied input, in one
     * task: the real server refuses within a millisecond, and the page must not handle the
     * refusal before the send (as a wait for the emptied input could let it). */
    const sendThenType = (text, next) => p.evaluate(([text, next]) => {
      const input = document.getElementById('message-input');
      input.value = text;
      document.getElementById('message-form').requestSubmit();
      if (input.value !== '') throw new Error(`the input still holds ${JSON.stringify(input.value)} after sending`);
      input.value = next;
    }, [text, next]);
    const notSent = (n) => p.waitForFunction((k) => document.querySelectorAll('#log .entry[data-not-sent="true"]').length === k,
      n, { timeout: T });

    await submitName(p, 'sender');
    await waitJoined(p, 'sender', ROOM);
    await send(p, 'stored fine');
    // A message is in the room's file before anyone receives it: the file is whole now.
    await observer.waitFor((e) => e.type === 'message' && e.text === 'stored fine', 'stored fine', 0);
    const file = path.join(dataDir, 'rooms', `${ROOM}.jsonl`);
    fileSizeLimit(fs.statSync(file).size);

    // With the input empty, the text comes back into it.
    await sendThenType(LOST, '');
    await notSent(1);
    assert.deepEqual((await messages(p)).filter((m) => m.own).map((m) => [m.text, m.notSent]), [['stored fine', false], [LOST, true]]);
    assert.match(await p.locator('#log .entry[data-not-sent="true"]').innerText(), /not sent/);
    assert.match(await p.locator('#log').innerText(), /Your message was not sent: the server could not store it \(.+\)\./);
    assert.equal(await p.inputValue('#message-input'), LOST, 'the text is back in the input');
    await shot(p, 'not-sent.png');

    // Sent again and refused again, with something else typed before the refusal comes: that
    // stays.
    await sendThenType(LOST, 'half typed');
    await notSent(2);
    assert.equal(await p.inputValue('#message-input'), 'half typed');
    assert.deepEqual((await messages(p)).filter((m) => m.own).map((m) => [m.text, m.notSent]),
      [['stored fine', false], [LOST, true], [LOST, true]]);

    // Room on the disk again: nobody received the lost text, and what is sent next arrives
    // as usual.
    fileSizeLimit('unlimited');
    await send(p, 'half typed, now sent');
    await observer.waitFor((e) => e.type === 'message' && e.text === 'half typed, now sent', 'the next message', 0);
    await waitMessage(page, 'sender', 'half typed, now sent');
    assert.ok(!observer.events.some((e) => e.type === 'message' && e.text === LOST), 'nobody got the lost one');
    assert.ok(!(await messages(page)).some((m) => m.text === LOST));
    assert.ok(!fs.readFileSync(file, 'utf8').includes(LOST), 'the lost text is not in the history');
  });

  step('7. no console errors, page errors or dialogs', async () => {
    assert.deepEqual(problems, []);
  });
});
