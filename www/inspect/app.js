// wschat inspector: shows the visitor's own WebSocket, byte by byte. Plain JavaScript, no
// dependencies, no build step.
//
// The server watches this page's connection (/inspect/ws) and sends reports about it on the
// same connection, as JSON text messages that start with {"inspect":"<nonce>"; the nonce is
// random per connection. The first message is always the handshake report, which tells us
// the nonce. Every later message that starts with the same marker is a report of frames; any
// other message is the echo of one we sent (its frame is reported like every other one).
//
// Closing: a browser drops messages that arrive once the page has called close(), so the
// page first sends {"closing":"<nonce>"} and calls close() when the server answers with a
// "closing" report. The server keeps the reports of the frames after that (our close frame,
// its answer) and the page fetches them from /inspect/after-close once the socket is closed.
//
// Safety rule for this file: every string from the network is rendered with textContent,
// never as HTML.
'use strict';

(() => {
  const SOCKET_URL = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/inspect/ws';
  const MAX_FRAMES_SHOWN = 500; // keep a long-running tab's memory bounded
  const CLOSE_REASON_MAX_BYTES = 123; // a control frame's 125 bytes, less the 2-byte code

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $('status'),
    requestBytes: $('request-bytes'),
    request: $('request'),
    proxyNote: $('proxy-note'),
    proxyHeaders: $('proxy-headers'),
    key: $('key'),
    guid: $('guid'),
    keyGuid: $('key-guid'),
    sha1: $('sha1'),
    accept: $('accept'),
    reply: $('reply'),
    sendForm: $('send-form'),
    textInput: $('text-input'),
    closeForm: $('close-form'),
    closeCode: $('close-code'),
    closeReason: $('close-reason'),
    reconnect: $('reconnect'),
    controlError: $('control-error'),
    closed: $('closed'),
    frames: $('frames'),
  };

  let ws = null; // the current socket; events from an older one are ignored
  let nonce = null; // from the handshake report
  let marker = null; // how every report of this connection starts
  let pendingClose = null; // { code, reason } once the page has announced its close
  let closeFallback = null;
  const onPage = new Set(); // "in 3": frames already shown

  // ---------------------------------------------------------------- helpers

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** "7f9f4d" -> "7f 9f 4d" */
  function spaced(hex) {
    return (hex.match(/../g) || []).join(' ');
  }

  function bytesOfHex(hex) {
    return (hex.match(/../g) || []).map((h) => parseInt(h, 16));
  }

  function bits(byte) {
    return byte.toString(2).padStart(8, '0');
  }

  function count(n) {
    return BigInt(n).toLocaleString('en-US');
  }

  function setStatus(state, text) {
    ui.status.dataset.state = state;
    document.body.dataset.state = state;
    ui.status.textContent = text;
    const open = state === 'connected';
    for (const control of document.querySelectorAll('.controls button, .controls input')) {
      if (control !== ui.reconnect) control.disabled = !open;
    }
    ui.reconnect.hidden = state !== 'closed';
    ui.reconnect.disabled = false;
  }

  function showError(text) {
    ui.controlError.textContent = text;
    ui.controlError.hidden = !text;
  }

  // ------------------------------------------------------------- handshake

  const STATUS_LABEL = {
    passed: '✓ passed',
    failed: '✗ failed',
    unchecked: 'not checked',
    optional: 'optional',
    declined: 'declined',
  };

  const LINE_END = { '\r\n': 'CR LF', '\n': 'LF', '': '' };

  /** One line of an HTTP head, its line end made visible. */
  function headLine(text, end) {
    const li = el('li', 'line');
    li.append(el('code', 'text', text), el('span', 'eol', LINE_END[end]));
    return li;
  }

  function showHandshake(report) {
    ui.requestBytes.textContent = count(report.bytes);
    ui.request.replaceChildren();
    for (const line of report.lines) {
      const li = headLine(line.text, line.end);
      li.dataset.status = line.status;
      li.dataset.item = line.item;
      if (line.item || line.status) {
        const badge = el('span', 'badge');
        badge.textContent = (line.item ? `4.2.1 item ${line.item}` : 'wschat rule')
          + (line.status ? ': ' + (STATUS_LABEL[line.status] || line.status) : '');
        badge.title = line.rule;
        li.append(badge);
      }
      // The requirement is spelled out for the lines the handshake looks at.
      if (line.status) li.append(el('span', 'rule', line.rule + (line.note ? ` (${line.note})` : '')));
      ui.request.append(li);
    }
    ui.proxyHeaders.replaceChildren(...report.forwarded.map((h) => el('li', null, h)));
    ui.proxyNote.hidden = report.forwarded.length === 0;

    ui.key.textContent = report.key;
    ui.key.dataset.value = report.key;
    ui.guid.textContent = report.guid;
    ui.keyGuid.textContent = report.keyGuid;
    ui.sha1.textContent = spaced(report.sha1);
    ui.sha1.dataset.hex = report.sha1;
    ui.accept.textContent = report.accept;
    ui.accept.dataset.value = report.accept;
    const replyLines = report.reply.split('\r\n');
    replyLines.pop(); // after the blank line's CR LF
    ui.reply.replaceChildren(...replyLines.map((line) => headLine(line, '\r\n')));
    ui.reply.dataset.raw = report.reply;
  }

  // ---------------------------------------------------------------- frames

  const LENGTH_ENCODING = {
    7: 'in the 7 bits of byte 1',
    16: 'in 16 bits, after 126 in the 7 bits',
    64: 'in 64 bits, after 127 in the 7 bits',
  };

  /** The header bytes, each as hex over its 8 bits, bits coloured by field. */
  function headerDiagram(f) {
    const bytes = bytesOfHex(f.head);
    const extended = f.lenBits === 16 ? 2 : f.lenBits === 64 ? 8 : 0;
    const fields = (i) => {
      if (i === 0) return ['fin', 'rsv', 'rsv', 'rsv', 'op', 'op', 'op', 'op'];
      if (i === 1) return ['mask', 'len', 'len', 'len', 'len', 'len', 'len', 'len'];
      if (i < 2 + extended) return Array(8).fill('len');
      return Array(8).fill('key');
    };
    const row = el('div', 'diagram');
    bytes.forEach((byte, i) => {
      const cell = el('span', 'byte');
      cell.append(el('span', 'hex', byte.toString(16).padStart(2, '0')));
      const bitRow = el('span', 'bits');
      [...bits(byte)].forEach((bit, j) => bitRow.append(el('span', 'bit ' + fields(i)[j], bit)));
      cell.append(bitRow);
      row.append(cell);
    });
    return row;
  }

  function field(dl, name, value, className) {
    dl.append(el('dt', null, name));
    const dd = el('dd', className);
    if (value instanceof Node) dd.append(value); else dd.textContent = value;
    dl.append(dd);
    return dd;
  }

  function showFrame(dir, f, afterClose = false) {
    const id = `${dir} ${f.n}`;
    if (onPage.has(id)) return;
    onPage.add(id);
    const card = el('article', afterClose ? 'frame after-close' : 'frame');
    Object.assign(card.dataset, {
      dir,
      n: String(f.n),
      op: f.op,
      opcode: String(f.opcode),
      fin: String(f.fin),
      masked: String(f.masked),
      mask: f.mask,
      len: f.len,
      lenBits: String(f.lenBits),
      wire: f.wire,
      payload: f.payload,
      cut: String(f.cut),
    });
    if (f.closeCode !== undefined) card.dataset.closeCode = String(f.closeCode);

    const who = dir === 'in' ? 'browser → server' : 'server → browser';
    const of = f.message ? ` of a ${f.message} message` : '';
    const title = el('h3', 'dir-' + dir, `${who} #${f.n}: ${f.op}${of}, `
      + `${count(f.len)}-byte payload, ${count(f.total)} bytes on the wire`);
    card.append(title, headerDiagram(f));

    const dl = el('dl');
    field(dl, 'FIN', f.fin ? '1: the last frame of its message' : '0: more frames of this message follow', 'fin');
    field(dl, 'RSV1 RSV2 RSV3', [f.rsv1, f.rsv2, f.rsv3].map(Number).join(' '), 'rsv');
    field(dl, 'opcode', `0x${f.opcode.toString(16)}: ${f.op}`, 'op');
    field(dl, 'MASK', f.masked ? '1' : '0', 'mask');
    field(dl, 'payload length', `${count(f.len)}, ${LENGTH_ENCODING[f.lenBits]}`, 'len');
    field(dl, 'masking key', f.masked ? spaced(f.mask) : 'none', 'key');
    const shown = f.cut ? ` (the first ${count(f.wire.length / 2)} of ${count(f.len)} bytes)` : '';
    if (f.masked) {
      field(dl, 'payload as sent' + shown, spaced(f.wire) || '(empty)', 'payload');
      field(dl, 'unmasked (XOR key)', spaced(f.payload) || '(empty)', 'payload');
    } else {
      field(dl, 'payload' + shown, spaced(f.payload) || '(empty)', 'payload');
    }
    if (f.closeCode !== undefined) {
      field(dl, 'close code', String(f.closeCode), 'close-code');
      field(dl, 'close reason', f.text === null ? '(not UTF-8)' : f.text, 'text');
    } else if (f.text !== null) {
      field(dl, 'as text', f.text, 'text');
    }
    card.append(dl);
    if (f.notes.length) {
      const notes = el('ul', 'notes');
      for (const note of f.notes) notes.append(el('li', null, note));
      card.append(notes);
    }
    ui.frames.prepend(card);
    while (ui.frames.childElementCount > MAX_FRAMES_SHOWN) ui.frames.lastElementChild.remove();
  }

  // ---------------------------------------------------------------- socket

  function onMessage(data) {
    if (typeof data !== 'string') return; // the echo of a binary message
    if (marker === null) {
      // The first message is the handshake report.
      let report;
      try { report = JSON.parse(data); } catch { return; }
      if (report.type !== 'handshake' || typeof report.inspect !== 'string') return;
      nonce = report.inspect;
      marker = '{"inspect":' + JSON.stringify(nonce);
      showHandshake(report);
      return;
    }
    if (!data.startsWith(marker)) return; // the echo of a text message
    const report = JSON.parse(data);
    if (report.type === 'frames') {
      for (const f of report.frames) showFrame(report.dir, f);
    } else if (report.type === 'closing' && pendingClose) {
      // Every report before this one has arrived: now the close frame can go.
      clearTimeout(closeFallback);
      ws.close(pendingClose.code, pendingClose.reason);
    }
  }

  /** The reports of the frames that went after the close started, kept by the server. */
  async function fetchAfterClose(sock, forNonce) {
    let reports;
    try {
      const reply = await fetch(`/inspect/after-close?n=${encodeURIComponent(forNonce)}`, { cache: 'no-store' });
      if (reply.status === 404) return; // nothing was kept (the connection just dropped)
      if (!reply.ok) throw new Error(`HTTP ${reply.status}`);
      reports = await reply.json();
    } catch (err) {
      if (ws === sock) showError(`Could not fetch the last frames: ${err.message}`);
      return;
    }
    if (ws !== sock) return;
    for (const report of reports) {
      if (report.type === 'frames') for (const f of report.frames) showFrame(report.dir, f, true);
    }
    ui.frames.dataset.afterClose = 'fetched';
  }

  function connect() {
    nonce = marker = pendingClose = null;
    onPage.clear();
    delete ui.frames.dataset.afterClose;
    ui.request.replaceChildren();
    ui.frames.replaceChildren();
    for (const node of [ui.key, ui.guid, ui.keyGuid, ui.sha1, ui.accept, ui.reply]) {
      node.replaceChildren();
    }
    ui.closed.hidden = true;
    showError('');
    setStatus('connecting', 'Connecting…');
    const sock = new WebSocket(SOCKET_URL);
    sock.binaryType = 'arraybuffer';
    ws = sock;
    sock.onopen = () => { if (ws === sock) setStatus('connected', 'Connected'); };
    sock.onmessage = (ev) => { if (ws === sock) onMessage(ev.data); };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      clearTimeout(closeFallback);
      setStatus('closed', 'Closed');
      ui.closed.textContent = `Closed: your browser got close code ${ev.code}`
        + (ev.reason ? ` with reason "${ev.reason}"` : '')
        + (ev.wasClean ? '. Nothing may follow a close frame (section 5.5.1), so the reports'
          + ' of the last frames (marked "after the close") were fetched over HTTP.'
          : ' (1006: the connection ended without a closing handshake).');
      ui.closed.hidden = false;
      if (nonce) fetchAfterClose(sock, nonce);
    };
  }

  function send(data) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    showError('');
    ws.send(data);
  }

  /** A readable text of exactly `size` bytes. */
  function sized(size) {
    const unit = '0123456789abcdefghijklmnopqrstuvwxyz';
    return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
  }

  ui.sendForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    send(ui.textInput.value);
  });
  $('send-binary').addEventListener('click', () => send(crypto.getRandomValues(new Uint8Array(16))));
  for (const button of document.querySelectorAll('button[data-size]')) {
    button.addEventListener('click', () => send(sized(Number(button.dataset.size))));
  }
  // JavaScript cannot send a ping frame; this message asks the server for one.
  $('send-ping').addEventListener('click', () => { if (nonce) send(JSON.stringify({ ping: nonce })); });

  ui.closeForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const code = Number(ui.closeCode.value);
    const reason = ui.closeReason.value;
    // What the WebSocket API lets a page send (section 7.4: the rest are the server's or
    // reserved), checked here to explain rather than throw.
    if (!(code === 1000 || (code >= 3000 && code <= 4999))) {
      showError('A page may close with 1000 or a code from 3000 to 4999.');
      return;
    }
    if (new TextEncoder().encode(reason).length > CLOSE_REASON_MAX_BYTES) {
      showError(`The reason may be at most ${CLOSE_REASON_MAX_BYTES} bytes of UTF-8.`);
      return;
    }
    // Announce the close first; the server's answer says every report so far has arrived.
    pendingClose = { code, reason };
    ws.send(JSON.stringify({ closing: nonce }));
    setStatus('closing', 'Closing…');
    // Should the answer never come, close anyway.
    const sock = ws;
    closeFallback = setTimeout(() => { if (ws === sock) sock.close(code, reason); }, 5000);
  });
  ui.reconnect.addEventListener('click', connect);

  connect();
})();
