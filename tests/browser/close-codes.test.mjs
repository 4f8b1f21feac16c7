// Close codes reach a real independent client that is still sending (issue 11, fault 2).
//
// npm `ws` (pinned in package.json) streams an oversize message to the real server on a free
// port and must receive wschat's close frame with 1009, never a reset (1006): a 16 MiB + 1 byte
// binary message to /echo, and a 1 MiB text message on /chat after joining, three runs each,
// all three must get 1009. Run by scripts/browser-test; WSCHAT_BIN overrides the binary.
//
// Every wait is bounded (T ms) and waits on an event; nothing sleeps.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { startServer, stopServer, T } from './support.mjs';

const RUNS = 3;
const ECHO_MAX = 16 * 1024 * 1024; // the default --max-echo-message
const CHAT_MESSAGE = 1024 * 1024; // far past the default --max-message (4 KiB)

/** Opens a `ws` client on `url` and resolves once it is open. */
async function open(url) {
  const ws = new WebSocket(url, { handshakeTimeout: T });
  const errors = [];
  ws.on('error', (err) => errors.push(err.message));
  const [, opened] = await Promise.race([
    once(ws, 'open').then(() => [null, true]),
    once(ws, 'close').then(() => [null, false]),
  ]);
  assert.ok(opened, `${url}: not opened (${errors.join('; ')})`);
  return { ws, errors };
}

/** Resolves with the close code and reason `ws` receives, at most T ms from now. */
function closeOf(ws, errors) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no close within ${T} ms`));
    }, T);
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString(), errors: [...errors] });
    });
  });
}

/** The next text message on `ws`, parsed as JSON. */
async function nextJson(ws) {
  const timer = setTimeout(() => ws.emit('error', new Error(`no message within ${T} ms`)), T);
  try {
    const [data] = await once(ws, 'message');
    return JSON.parse(data.toString());
  } finally {
    clearTimeout(timer);
  }
}

describe('close codes reach npm ws while it is still sending', { timeout: 180_000 }, () => {
  let server = null;
  const log = [];

  before(async () => {
    server = await startServer(['--addr', '127.0.0.1:0'], log);
  });

  after(async () => {
    const res = await stopServer(server);
    assert.deepEqual(res, { code: 0, signal: null }, 'the server exits cleanly');
  });

  test(`a ${ECHO_MAX} + 1 byte binary message to /echo gets 1009, ${RUNS} runs of ${RUNS}`, async () => {
    const payload = Buffer.alloc(ECHO_MAX + 1, 7);
    const got = [];
    for (let run = 0; run < RUNS; run++) {
      const { ws, errors } = await open(`ws://127.0.0.1:${server.port}/echo`);
      const closed = closeOf(ws, errors);
      ws.send(payload, { binary: true });
      got.push(await closed);
    }
    assert.deepEqual(got.map((c) => c.code), Array(RUNS).fill(1009), JSON.stringify(got));
    for (const c of got) assert.match(c.reason, /16777216/, 'the reason names the limit');
  });

  test(`a 1 MiB text message on /chat after joining gets 1009, ${RUNS} runs of ${RUNS}`, async () => {
    const text = 'x'.repeat(CHAT_MESSAGE);
    const got = [];
    for (let run = 0; run < RUNS; run++) {
      const { ws, errors } = await open(`ws://127.0.0.1:${server.port}/chat`);
      const welcome = nextJson(ws);
      ws.send(`big${run}`);
      assert.equal((await welcome).type, 'welcome');
      const closed = closeOf(ws, errors);
      ws.send(text);
      got.push(await closed);
    }
    assert.deepEqual(got.map((c) => c.code), Array(RUNS).fill(1009), JSON.stringify(got));
  });
});
