// Rooms in the chat page (issue 13), in headless Chromium against the real server.
//
// A link /#NAME opens room NAME (no hash: the lobby); people in different rooms never see each
// other's messages or joins; the room form switches rooms under the same name (the old room
// sees the leave, the page no "connection lost"); back and forward switch too; a name taken in
// the new room brings the name form back; an invalid room name is refused with the reason;
// past --max-rooms the server's reason is shown and the page does not retry by itself; after a
// server restart the page goes back to its room; the header fits at phone width; and no
// console errors anywhere.
//
// Run by scripts/browser-test. Every wait is bounded and waits on a DOM condition or an event.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  ARTIFACTS, PHONE, T, launchBrowser, memberNames, messages, notices, openPage, send, shot,
  startServer, stepper, stopServer, submitName, waitJoined, waitMembers, waitMessage, waitNotice,
} from './support.mjs';

const MAX_ROOMS = 3;

describe('rooms in the chat page', { timeout: 300_000 }, () => {
  const { step, failed } = stepper(test);
  const serverLog = [];
  let server = null;
  let browser = null;
  const pages = {};
  const problems = []; // console errors, page errors, dialogs
  // While the server is down on purpose, Chromium logs the refused reconnects of the pages.
  let restartWindow = false;
  const expected = (text) => restartWindow && /^WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/chat(\/[a-z0-9_-]+)?' failed/.test(text);

  const base = () => `http://127.0.0.1:${server.port}/`;
  const open = async (label, hash = '', options = {}) => {
    pages[label] = await openPage(browser.context, label, base() + hash, problems, { expected, ...options });
    return pages[label];
  };
  const state = (page) => page.evaluate(() => ({
    room: document.body.dataset.room,
    label: document.getElementById('room-label').textContent,
    status: document.getElementById('status').dataset.state,
    hash: location.hash,
    path: location.pathname,
  }));
  const logText = (page) => page.locator('#log').innerText();
  const switchRoom = async (page, name) => {
    await page.fill('#room-input', name);
    await page.press('#room-input', 'Enter');
  };

  before(async () => {
    server = await startServer(['--addr', '127.0.0.1:0', '--max-rooms', String(MAX_ROOMS)], serverLog);
    browser = await launchBrowser();
  });

  after(async () => {
    try { if (browser) await browser.close(); } catch (err) { console.error('closing browser:', err.message); }
    const res = await stopServer(server);
    if (failed() || (res && res.code !== 0)) console.error('--- server log (tail) ---\n' + serverLog.join('').slice(-4000));
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    fs.writeFileSync(path.join(ARTIFACTS, 'rooms-server.log'), serverLog.join(''));
  });

  step('1. a link /#Team-A opens room team-a', async () => {
    const a = await open('alice', '#Team-A');
    // Before joining, the header and the name form already name the room of the link.
    assert.equal(await a.locator('#room-label').textContent(), '#team-a');
    assert.equal(await a.locator('label[for="name-input"]').textContent(), 'Choose a name to join #team-a');
    assert.equal(await a.evaluate(() => location.hash), '#team-a', 'the address is made canonical');
    await submitName(a, 'alice');
    await waitJoined(a, 'alice', 'team-a'); // body[data-room] comes from the server's welcome
    assert.equal(await a.title(), '#team-a · wschat');
    await waitMembers(a, ['alice']);
  });

  step('2. people in different rooms do not see each other\'s messages or joins', async () => {
    const b = await open('bob'); // no hash: the lobby
    await submitName(b, 'bob');
    await waitJoined(b, 'bob', 'lobby');
    assert.deepEqual(await state(b), { room: 'lobby', label: '#lobby', status: 'connected', hash: '', path: '/' });
    const c = await open('carol', '#team-a');
    await submitName(c, 'carol');
    await waitJoined(c, 'carol', 'team-a');
    await waitNotice(pages.alice, 'join', 'carol');
    // Names are per room: another "carol" in the lobby is fine.
    const d = await open('carol2', '#lobby');
    assert.equal(await d.evaluate(() => location.hash), '', '#lobby is the lobby, at /');
    await submitName(d, 'carol');
    await waitJoined(d, 'carol', 'lobby');
    await waitNotice(b, 'join', 'carol');

    await send(pages.alice, 'secret of team-a');
    await waitMessage(c, 'alice', 'secret of team-a');
    await send(b, 'lobby talk');
    await waitMessage(d, 'bob', 'lobby talk');
    // Barriers: each page receives a message from its own room sent after the other room's
    // message was delivered, so a wrongly routed one would already be on screen.
    await send(d, 'lobby barrier');
    await waitMessage(b, 'carol', 'lobby barrier');
    await send(c, 'team-a barrier');
    await waitMessage(pages.alice, 'carol', 'team-a barrier');

    assert.deepEqual((await messages(b)).map((m) => m.text), ['lobby talk', 'lobby barrier']);
    assert.deepEqual(await notices(b), [['join', 'carol']]);
    assert.deepEqual((await messages(pages.alice)).map((m) => m.text), ['secret of team-a', 'team-a barrier']);
    assert.deepEqual(await notices(pages.alice), [['join', 'carol']]);
    await waitMembers(pages.alice, ['alice', 'carol']);
    await waitMembers(b, ['bob', 'carol']);
    await shot(pages.alice, 'rooms-alice-team-a.png');
  });

  step('3. alice switches to the lobby with the form: same name, the old room sees her leave', async () => {
    const { alice: a, bob: b, carol: c } = pages;
    await switchRoom(a, 'lobby');
    await waitJoined(a, 'alice', 'lobby');
    await waitNotice(c, 'leave', 'alice');
    await waitNotice(b, 'join', 'alice');
    await waitMembers(c, ['carol']);
    await waitMembers(a, ['alice', 'bob', 'carol']);
    assert.deepEqual(await state(a), { room: 'lobby', label: '#lobby', status: 'connected', hash: '', path: '/' });
    // A fresh log: the lobby's backlog only, nothing of team-a, no "connection lost".
    const got = await messages(a);
    assert.deepEqual(got.map((m) => [m.from, m.text, m.backlog]),
      [['bob', 'lobby talk', true], ['carol', 'lobby barrier', true]]);
    const text = await logText(a);
    assert.ok(!/connection lost/i.test(text), text);
    assert.ok(!text.includes('secret of team-a'), text);
    // The switch closed the old socket cleanly.
    assert.ok(serverLog.join('').match(/GET \/chat\/team-a 101 closed 1000 /), 'team-a session closed with 1000');
  });

  step('4. back returns to team-a, forward to the lobby', async () => {
    const { alice: a, bob: b, carol: c } = pages;
    await a.goBack();
    await waitJoined(a, 'alice', 'team-a');
    assert.equal((await state(a)).hash, '#team-a');
    await waitNotice(b, 'leave', 'alice');
    await waitMembers(c, ['alice', 'carol']);
    await waitMessage(a, 'alice', 'secret of team-a'); // team-a's backlog again
    assert.deepEqual((await messages(a)).map((m) => m.text), ['secret of team-a', 'team-a barrier']);

    await a.goForward();
    await waitJoined(a, 'alice', 'lobby');
    await waitMembers(b, ['alice', 'bob', 'carol']);
    await a.goBack();
    await waitJoined(a, 'alice', 'team-a');
    await waitMembers(b, ['bob', 'carol']);
    await waitMembers(c, ['alice', 'carol']);
    await waitMembers(a, ['alice', 'carol']);
  });

  step('5. a name taken in the new room brings the name form back with the server\'s reason', async () => {
    const d = pages.carol2; // "carol" in the lobby; team-a has its own carol
    await switchRoom(d, 'team-a');
    const err = d.locator('#name-error');
    await err.waitFor({ state: 'visible', timeout: T });
    assert.match(await err.textContent(), /taken|in use|already/i);
    assert.equal(await d.inputValue('#name-input'), 'carol');
    assert.ok(await d.locator('#chat-view').isHidden());
    assert.equal(await d.locator('label[for="name-input"]').textContent(), 'Choose a name to join #team-a');
    await waitNotice(pages.bob, 'leave', 'carol'); // gone from the lobby
    await submitName(d, 'dave');
    await waitJoined(d, 'dave', 'team-a');
    await waitNotice(pages.alice, 'join', 'dave');
    await waitMembers(d, ['alice', 'carol', 'dave']);
  });

  step('6. an invalid room name is refused with the reason, and the page stays where it is', async () => {
    const b = pages.bob;
    const err = b.locator('#room-error');
    for (const [input, reason] of [
      ['no spaces', /not a room name.*a-z, 0-9, - and _/],
      ['x'.repeat(33), /at most 32 characters/],
      ['café', /not a room name/],
      ['', /enter a room name/i],
    ]) {
      await switchRoom(b, input);
      await err.waitFor({ state: 'visible', timeout: T });
      assert.match(await err.textContent(), reason, input);
      assert.deepEqual(await state(b), { room: 'lobby', label: '#lobby', status: 'connected', hash: '', path: '/' });
    }
    assert.equal(await b.getAttribute('#room-input', 'aria-invalid'), 'true');
    // A bad hash typed into the address bar is refused the same way.
    await b.evaluate(() => { location.hash = 'two words'; });
    await b.waitForFunction(() => /not a room name/.test(document.getElementById('room-error').textContent)
      && location.hash === '', null, { timeout: T });
    assert.equal((await state(b)).room, 'lobby');
    await shot(b, 'rooms-invalid-name.png');
    // Still in the lobby, and still connected: the message goes out (the input clears).
    await send(b, 'still in the lobby');
  });

  step(`7. past --max-rooms ${MAX_ROOMS} the server's reason is shown and the page waits`, async () => {
    const b = pages.bob;
    await switchRoom(b, 'team-b'); // the third room
    await waitJoined(b, 'bob', 'team-b');
    await switchRoom(b, 'team-c'); // one too many
    await b.waitForFunction(() => document.getElementById('status').dataset.state === 'disconnected', null, { timeout: T });
    const text = await logText(b);
    assert.match(text, /Cannot join #team-c: this server has its limit of 3 rooms: join an existing one\./);
    assert.equal(await b.locator('#status').textContent(), 'Not in a room', 'no reconnect scheduled');
    assert.equal(await b.locator('#message-send').isDisabled(), true);
    assert.ok(!/connection lost/i.test(text), text);
    await shot(b, 'rooms-too-many.png');
    // Another room that exists works.
    await switchRoom(b, 'team-b');
    await waitJoined(b, 'bob', 'team-b');
  });

  step('8. after a server restart the pages reconnect to their own rooms', async () => {
    const { alice: a, bob: b } = pages;
    const port = server.port;
    restartWindow = true;
    assert.deepEqual(await stopServer(server), { code: 0, signal: null });
    await a.waitForFunction(() => document.getElementById('status').dataset.state !== 'connected', null, { timeout: T });
    server = await startServer(['--addr', `127.0.0.1:${port}`, '--max-rooms', String(MAX_ROOMS)], serverLog);
    await waitJoined(a, 'alice', 'team-a');
    await waitJoined(b, 'bob', 'team-b');
    await waitJoined(pages.carol, 'carol', 'team-a');
    await waitJoined(pages.carol2, 'dave', 'team-a');
    restartWindow = false;
    await send(a, 'team-a after the restart');
    await waitMessage(pages.carol, 'alice', 'team-a after the restart');
    await waitMembers(b, ['bob']);
  });

  step('9. at 375 px the header, the room form and a long room name fit', async () => {
    const p = await open('phone', '#' + 'r'.repeat(32), { viewport: PHONE });
    // The rooms were made again after the restart: team-a and team-b; this is the third.
    await submitName(p, 'pat');
    await waitJoined(p, 'pat', 'r'.repeat(32));
    const m = await p.evaluate(() => {
      const box = (id) => document.getElementById(id).getBoundingClientRect();
      return {
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
        roomInput: box('room-input'),
        messageInput: box('message-input'),
      };
    });
    assert.ok(m.scrollWidth <= m.innerWidth, `no horizontal scroll (scrollWidth ${m.scrollWidth})`);
    assert.ok(m.roomInput.left >= 0 && m.roomInput.right <= m.innerWidth && m.roomInput.width >= 150, JSON.stringify(m.roomInput));
    assert.ok(m.messageInput.right <= m.innerWidth, JSON.stringify(m.messageInput));
    await shot(p, 'rooms-phone.png');
  });

  step('10. no console errors, page errors or dialogs on any page', async () => {
    assert.deepEqual(problems, []);
    for (const [label, page] of Object.entries(pages)) {
      assert.equal(await page.locator('#log img, #log script').count(), 0, label);
    }
    assert.deepEqual(await memberNames(pages.phone), ['pat']);
  });
});
