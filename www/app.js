// wschat browser client: plain JavaScript, no dependencies, no build step.
//
// Protocol (see README): the first text frame is our name; the server answers
// {"type":"welcome"} or {"type":"name-refused"}, then sends the backlog and
// live "message" / "join" / "leave" objects. Our own messages are not echoed,
// so we show them locally when sent.
//
// Safety rule for this file: every string that came from the user or the
// network is rendered with textContent / createTextNode, never as HTML.
'use strict';

(() => {
  const MAX_NAME_CHARS = 32;
  const MAX_MESSAGE_BYTES = 4096; // the server closes the socket (1009) above this
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const MAX_LOG_ENTRIES = 2000; // keep a long-running tab's memory bounded
  const RECENT_KEEP = 500; // chat messages remembered for backlog de-duplication

  const CHAT_URL = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/chat';

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $('status'),
    statusText: $('status-text'),
    statusCountdown: $('status-countdown'),
    nameView: $('name-view'),
    nameForm: $('name-form'),
    nameInput: $('name-input'),
    nameError: $('name-error'),
    chatView: $('chat-view'),
    log: $('log'),
    messageForm: $('message-form'),
    messageInput: $('message-input'),
    messageSend: $('message-send'),
    members: $('members'),
    memberCount: $('member-count'),
  };

  let ws = null; // the current socket; events from older sockets are ignored
  let wantedName = null; // name to (re)join with; null while the user is choosing one
  let myName = null; // name the server accepted (its canonical form)
  let joined = false; // between "welcome" and the socket closing
  let everJoined = false;
  let attempt = 0; // consecutive reconnect attempts, drives the backoff
  let retryTimer = null;
  let countdownTimer = null;
  const members = new Set(); // other people in the room

  // After a reconnect the server replays its backlog, which overlaps what is
  // already on screen. We remember recent messages as "from\ntext" keys and,
  // while replaying, skip as many copies of each key as we have already shown.
  // (Identical repeated messages may rarely be under-shown; never duplicated.)
  const recent = [];
  let backlogSkip = new Map();

  // ---------------------------------------------------------------- status

  function setStatus(state, text, countdown = '') {
    ui.status.dataset.state = state;
    document.body.dataset.state = state;
    // Only touch the live text when it changes, so it is announced once.
    if (ui.statusText.textContent !== text) ui.statusText.textContent = text;
    ui.statusCountdown.textContent = countdown;
  }

  function clearTimers() {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    retryTimer = countdownTimer = null;
  }

  // --------------------------------------------------------------- socket

  function connect() {
    clearTimers();
    setStatus('connecting', 'Connecting…');
    let sock;
    try {
      sock = new WebSocket(CHAT_URL);
    } catch (err) {
      console.warn('wschat: cannot open WebSocket', err);
      scheduleReconnect();
      return;
    }
    ws = sock;
    sock.onopen = () => {
      if (ws === sock && wantedName !== null) sock.send(wantedName);
    };
    sock.onmessage = (ev) => {
      if (ws === sock) handleFrame(ev.data);
    };
    // "error" is always followed by "close", so all recovery happens there.
    sock.onclose = (ev) => {
      if (ws === sock) onClosed(ev);
    };
  }

  function onClosed(ev) {
    ws = null;
    const wasJoined = joined;
    joined = false;
    updateComposer();
    if (wasJoined) addSystem('Connection lost: ' + describeClose(ev) + '.');
    if (wantedName === null) {
      // The user is choosing a name (after a refusal); connect again on submit.
      setStatus('disconnected', 'Disconnected');
      return;
    }
    scheduleReconnect();
  }

  function describeClose(ev) {
    switch (ev.code) {
      case 1001: return 'the server is restarting';
      case 1008: return 'closed by server policy' + (ev.reason ? ' (' + ev.reason + ')' : '');
      case 1009: return 'message too big';
      default: return ev.reason || 'code ' + ev.code;
    }
  }

  function scheduleReconnect() {
    clearTimers();
    // Exponential backoff with "equal jitter": wait between half and all of
    // the current step, so clients dropped together by a server restart do
    // not all come back in the same instant.
    const step = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
    const delay = step / 2 + Math.random() * (step / 2);
    attempt += 1;
    const due = Date.now() + delay;
    const tick = () => {
      const secs = Math.max(1, Math.ceil((due - Date.now()) / 1000));
      setStatus('reconnecting', 'Reconnecting', ' in ' + secs + ' s…');
    };
    tick();
    countdownTimer = setInterval(tick, 250);
    retryTimer = setTimeout(connect, delay);
  }

  // Coming back online: no point waiting out the rest of the backoff.
  window.addEventListener('online', () => {
    if (retryTimer !== null) connect();
  });

  // -------------------------------------------------------------- protocol

  function handleFrame(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      console.warn('wschat: ignoring a frame that is not JSON');
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'welcome': onWelcome(msg); break;
      case 'name-refused': onNameRefused(msg); break;
      case 'message':
        if (typeof msg.from === 'string' && typeof msg.text === 'string') onChatMessage(msg);
        break;
      case 'join':
        if (typeof msg.name === 'string') onJoin(msg.name);
        break;
      case 'leave':
        if (typeof msg.name === 'string') onLeave(msg.name);
        break;
      // Several nodes (--redis): the shared store went away and came back.
      case 'degraded':
        addSystem('The chat is degraded: messages cannot be sent for now.');
        break;
      case 'restored':
        addSystem('The chat is back: messages can be sent again.');
        break;
      default:
        // Unknown types (from a newer server) are ignored on purpose.
        break;
    }
  }

  function onWelcome(msg) {
    myName = typeof msg.name === 'string' ? msg.name : wantedName;
    wantedName = myName; // reconnect with exactly the accepted name
    joined = true;
    attempt = 0;
    members.clear();
    for (const m of Array.isArray(msg.members) ? msg.members : []) {
      if (typeof m === 'string' && m !== myName) members.add(m);
    }
    renderMembers();
    backlogSkip = new Map();
    for (const key of recent) backlogSkip.set(key, (backlogSkip.get(key) || 0) + 1);
    if (everJoined) addSystem('Reconnected.');
    everJoined = true;
    // Move focus only when coming from the name form, not on a silent reconnect.
    const fromNameForm = !ui.nameView.hidden;
    ui.nameView.hidden = true;
    ui.chatView.hidden = false;
    setStatus('connected', 'Connected as ' + myName);
    updateComposer();
    if (fromNameForm) ui.messageInput.focus();
  }

  function onNameRefused(msg) {
    const refused = wantedName;
    wantedName = null; // the socket stays open; the next name is sent on it
    const reason = typeof msg.reason === 'string' && msg.reason ? msg.reason : 'That name cannot be used.';
    showNameForm(reason, refused);
    setStatus('connecting', 'Name refused, choose another');
  }

  function onChatMessage(msg) {
    const key = msg.from + '\n' + msg.text;
    const backlog = msg.backlog === true;
    if (backlog) {
      const n = backlogSkip.get(key) || 0;
      if (n > 0) {
        backlogSkip.set(key, n - 1); // already on screen from before the reconnect
        return;
      }
    }
    remember(key);
    addMessage(msg.from, msg.text, { backlog });
  }

  function onJoin(name) {
    if (name !== myName) members.add(name);
    renderMembers();
    addNotice('join', name, ' joined');
  }

  function onLeave(name) {
    members.delete(name);
    renderMembers();
    addNotice('leave', name, ' left');
  }

  function remember(key) {
    recent.push(key);
    if (recent.length > RECENT_KEEP) recent.shift();
  }

  // ------------------------------------------------------------ name form

  function nameProblem(name) {
    const chars = [...name].length; // code points, like the server counts them
    if (chars === 0) return 'Please enter a name.';
    if (chars > MAX_NAME_CHARS) return 'A name has at most ' + MAX_NAME_CHARS + ' characters.';
    if (/\p{Cc}/u.test(name)) return 'A name cannot contain control characters.';
    return null;
  }

  function showNameForm(error, value) {
    ui.chatView.hidden = true;
    ui.nameView.hidden = false;
    ui.nameError.textContent = error || '';
    ui.nameError.hidden = !error;
    ui.nameInput.setAttribute('aria-invalid', error ? 'true' : 'false');
    if (value != null) ui.nameInput.value = value;
    ui.nameInput.focus();
    ui.nameInput.select();
  }

  ui.nameForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = ui.nameInput.value.trim();
    const problem = nameProblem(name);
    if (problem) {
      showNameForm(problem);
      return;
    }
    ui.nameError.hidden = true;
    wantedName = name;
    if (ws && ws.readyState === WebSocket.OPEN && !joined) {
      ws.send(name); // still connected after a refusal: just try again
      setStatus('connecting', 'Joining…');
    } else if (!ws) {
      attempt = 0;
      connect(); // the open handler sends the name
    }
    // else: the socket is still connecting and its open handler sends the name.
  });

  // -------------------------------------------------------------- sending

  function updateComposer() {
    ui.messageSend.disabled = !joined;
  }

  ui.messageForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = ui.messageInput.value;
    if (!text.trim()) return;
    // While offline the text stays in the input, so nothing typed is lost.
    if (!joined || !ws || ws.readyState !== WebSocket.OPEN) return;
    if (new TextEncoder().encode(text).length > MAX_MESSAGE_BYTES) {
      addSystem('That message is too long (at most ' + MAX_MESSAGE_BYTES + ' bytes).');
      return;
    }
    ws.send(text);
    remember(myName + '\n' + text);
    addMessage(myName, text, { own: true });
    ui.messageInput.value = '';
  });

  // ------------------------------------------------------------ rendering

  // A stable hue per name so senders are easy to tell apart.
  function hueFor(name) {
    let h = 0;
    for (const ch of name) h = (h * 31 + ch.codePointAt(0)) % 360;
    return String(h);
  }

  function nameSpan(name, cls) {
    const span = document.createElement('span');
    span.className = cls;
    span.textContent = name;
    span.style.setProperty('--hue', hueFor(name));
    return span;
  }

  function timeStamp() {
    const t = document.createElement('time');
    const now = new Date();
    t.dateTime = now.toISOString();
    t.textContent = now.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    return t;
  }

  function appendEntry(kind, children, extra) {
    const log = ui.log;
    // Follow new entries only if the reader is already at the bottom.
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    const div = document.createElement('div');
    div.className = 'entry';
    div.dataset.kind = kind;
    if (extra) extra(div);
    div.append(...children);
    log.append(div);
    while (log.childElementCount > MAX_LOG_ENTRIES) log.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function addMessage(from, text, { own = false, backlog = false } = {}) {
    const body = document.createElement('span');
    body.className = 'text';
    body.textContent = text;
    const kids = [nameSpan(from, 'from'), body];
    if (!backlog) kids.push(timeStamp()); // the backlog carries no times
    appendEntry('message', kids, (div) => {
      div.dataset.from = from;
      if (own) { div.classList.add('own'); div.dataset.own = 'true'; }
      if (backlog) { div.classList.add('backlog'); div.dataset.backlog = 'true'; }
    });
  }

  function addNotice(kind, name, verb) {
    appendEntry(kind, [nameSpan(name, 'who'), document.createTextNode(verb), timeStamp()], (div) => {
      div.dataset.name = name;
    });
  }

  function addSystem(text) {
    const span = document.createElement('span');
    span.className = 'text';
    span.textContent = text;
    appendEntry('system', [span, timeStamp()]);
  }

  function renderMembers() {
    const items = [];
    if (myName !== null) {
      const li = document.createElement('li');
      li.className = 'me';
      li.dataset.name = myName;
      li.dataset.self = 'true';
      li.append(nameSpan(myName, 'who'), document.createTextNode(' (you)'));
      items.push(li);
    }
    for (const name of [...members].sort((a, b) => a.localeCompare(b))) {
      const li = document.createElement('li');
      li.dataset.name = name;
      li.append(nameSpan(name, 'who'));
      items.push(li);
    }
    ui.members.replaceChildren(...items);
    ui.memberCount.textContent = String(items.length);
  }

  updateComposer();
})();
