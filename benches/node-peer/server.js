#!/usr/bin/env node
// Comparison peer for scripts/bench: the wschat /chat protocol and /echo, written
// on npm's `ws` the way a Node developer would write them, plus static files
// served by npm's `node-static`.
//
//   node server.js PORT [--root DIR]
//
// Listens on 127.0.0.1:PORT (0 picks a free port) and prints
// `listening on http://127.0.0.1:PORT/` as its first stdout line.
// Deliberately no outgoing-queue limit: ws buffers for a slow reader without
// bound (socket.bufferedAmount), which is the usual Node behaviour.
'use strict';

const http = require('http');
const path = require('path');
const { WebSocketServer } = require('ws');
const nodeStatic = require('node-static');

function usage() {
  process.stderr.write('usage: node server.js PORT [--root DIR]\n');
  process.exit(2);
}

const args = process.argv.slice(2);
let port = null;
let root = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--root') {
    root = args[++i];
    if (!root) usage();
  } else if (port === null && /^\d+$/.test(args[i])) {
    port = Number(args[i]);
  } else {
    usage();
  }
}
if (port === null || port > 65535) usage();

const HISTORY = 50;
const MAX_CHAT_MESSAGE = 4096;
const MAX_ECHO_MESSAGE = 16 * 1024 * 1024;
const MAX_NAME_CHARS = 32;

// ---------------------------------------------------------------- static files
const files = root ? new nodeStatic.Server(path.resolve(root), { cache: false }) : null;

const server = http.createServer((req, res) => {
  if (!files) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('no --root given\n');
    return;
  }
  req.addListener('end', () => files.serve(req, res)).resume();
});

// ---------------------------------------------------------------------- /echo
const echoWss = new WebSocketServer({
  noServer: true,
  maxPayload: MAX_ECHO_MESSAGE,
  perMessageDeflate: false,
});
echoWss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});

// ---------------------------------------------------------------------- /chat
const chatWss = new WebSocketServer({
  noServer: true,
  maxPayload: MAX_CHAT_MESSAGE, // ws closes with 1009 above this
  perMessageDeflate: false,
});

const members = new Map(); // lower-cased name -> { name, ws }
const backlog = []; // last HISTORY chat messages: { from, text }

function sendJson(ws, obj) {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(obj));
}

function broadcast(exceptKey, obj) {
  const data = JSON.stringify(obj);
  for (const [key, m] of members) {
    if (key !== exceptKey && m.ws.readyState === m.ws.OPEN) m.ws.send(data);
  }
}

function checkName(raw) {
  const name = raw.trim();
  const chars = [...name].length;
  if (chars < 1) return { reason: 'the name is empty' };
  if (chars > MAX_NAME_CHARS) return { reason: `the name is longer than ${MAX_NAME_CHARS} characters` };
  // control characters: C0, DEL, C1
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return { reason: 'the name contains control characters' };
  if (members.has(name.toLowerCase())) return { reason: 'that name is already taken' };
  return { name };
}

chatWss.on('connection', (ws) => {
  let key = null; // set once joined

  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      ws.close(1003, 'binary messages are not accepted');
      return;
    }
    const text = data.toString('utf8'); // ws has already validated UTF-8 (1007 otherwise)
    if (key === null) {
      const r = checkName(text);
      if (!r.name) {
        sendJson(ws, { type: 'name-refused', reason: r.reason });
        return;
      }
      key = r.name.toLowerCase();
      const others = [...members.values()].map((m) => m.name);
      members.set(key, { name: r.name, ws });
      sendJson(ws, { type: 'welcome', name: r.name, members: others });
      for (const b of backlog) sendJson(ws, { type: 'message', from: b.from, text: b.text, backlog: true });
      broadcast(key, { type: 'join', name: r.name });
      return;
    }
    if (text.trim() === '') return; // blank messages are dropped, as wschat does
    const name = members.get(key).name;
    backlog.push({ from: name, text });
    if (backlog.length > HISTORY) backlog.shift();
    broadcast(key, { type: 'message', from: name, text });
  });

  ws.on('close', () => {
    if (key !== null) {
      const m = members.get(key);
      members.delete(key);
      broadcast(null, { type: 'leave', name: m.name });
      key = null;
    }
  });
  ws.on('error', () => {});
});

// ------------------------------------------------------------------- upgrades
server.on('upgrade', (req, socket, head) => {
  const pathname = (req.url || '').split('?')[0];
  const wss = pathname === '/echo' ? echoWss : pathname === '/chat' ? chatWss : null;
  if (!wss) {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

function shutdown() {
  for (const wss of [echoWss, chatWss]) {
    for (const ws of wss.clients) ws.close(1001, 'server shutting down');
  }
  server.close();
  setTimeout(() => process.exit(0), 200).unref();
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on http://127.0.0.1:${server.address().port}/\n`);
});
