// wschat browser client: plain JavaScript, no dependencies, no build step.
//
// Protocol (see README): the page joins one room, named by the URL's hash
// (/#team-a; no hash is the lobby), at /chat/NAME (/chat for the lobby). The
// first text frame is our name; the server answers {"type":"welcome"} or
// {"type":"name-refused"}, then sends the backlog and live "message" / "join" /
// "leave" objects, merged "presence" and whole-list "members" objects when we
// fell behind, and "not-sent" when it could not keep one of our messages. Our
// own messages are not echoed, so we show them locally when sent.
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
  const LOBBY = 'lobby'; // the room /chat joins
  const MAX_ROOM_CHARS = 32;
  const ROOM_RULE = 'A room name is 1 to ' + MAX_ROOM_CHARS + ' characters of a-z, 0-9, - and _.';
  // A merged presence event naming more people than this is one summary line.
  const PRESENCE_LINES_MAX = 20;

  const WS_BASE = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;
  const chatUrl = (name) => WS_BASE + (name === LOBBY ? '/chat' : '/chat/' + encodeURIComponent(name));

  const $ = (id) => document.getElementById(id);
  const ui = {
    roomLabel: $('room-label'),
    roomForm: $('room-form'),
    roomInput: $('room-input'),
    roomError: $('room-error'),
    nameRoom: $('name-room'),
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
  let room = null; // the room we are in or joining (lower case, as the server names it)
  let wantedName = null; // name to (re)join with; null while the user is choosing one
  let myName = null; // name the server accepted (its canonical form)
  let joined = false; // between "welcome" and the socket closing
  let everJoined = false; // in this room, so a later welcome is a reconnect
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
      sock = new WebSocket(chatUrl(room));
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
    if (!wasJoined && ev.code === 1008 && wantedName !== null) {
      // Refused before the welcome, e.g. the server's cap on rooms: trying again would be
      // refused again, so say why and wait for the person to pick another room or retry.
      const why = 'Cannot join #' + room + ': ' + (ev.reason || 'refused by the server') + '.';
      if (!ui.nameView.hidden) showNameForm(why);
      else addSystem(why);
      setStatus('disconnected', 'Not in a room');
      return;
    }
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
      case 'presence': onPresence(msg); break;
      case 'members': onMembers(msg); break;
      case 'not-sent':
        if (typeof msg.text === 'string') onNotSent(msg);
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
    document.body.dataset.room = typeof msg.room === 'string' ? msg.room : room;
    showRoom(document.body.dataset.room);
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

  // After a "members" list, a join of someone listed or a leave of someone not
  // listed may still follow (the list can be newer than the notices queued
  // behind it): those change nothing and are not shown.
  function onJoin(name) {
    if (name === myName || members.has(name)) return;
    members.add(name);
    renderMembers();
    addNotice('join', name, ' joined');
  }

  function onLeave(name) {
    if (!members.delete(name)) return;
    renderMembers();
    addNotice('leave', name, ' left');
  }

  const names = (list) => (Array.isArray(list) ? list.filter((n) => typeof n === 'string') : []);

  // Joins and leaves merged by the server while we were behind: the net effect
  // since our last notice. Joined first, then left.
  function onPresence(msg) {
    const came = [];
    const went = [];
    for (const name of names(msg.joined)) {
      if (name !== myName && !members.has(name)) { members.add(name); came.push(name); }
    }
    for (const name of names(msg.left)) {
      if (members.delete(name)) went.push(name);
    }
    renderMembers();
    if (came.length + went.length > PRESENCE_LINES_MAX) {
      addSummary('presence', came, went);
    } else {
      for (const name of came) addNotice('join', name, ' joined');
      for (const name of went) addNotice('leave', name, ' left');
    }
  }

  // Everyone present (us included), for when we fell too far behind for the
  // changes: it replaces the list; what changed is one summary line.
  function onMembers(msg) {
    const now = new Set(names(msg.members).filter((n) => n !== myName));
    const came = [...now].filter((n) => !members.has(n));
    const went = [...members].filter((n) => !now.has(n));
    members.clear();
    for (const name of now) members.add(name);
    renderMembers();
    if (came.length + went.length > 0) addSummary('members', came, went);
  }

  // The server could not keep one of our messages (e.g. its disk is full), so
  // nobody received it. Mark our latest copy of it and give the text back.
  function onNotSent(msg) {
    const reason = typeof msg.reason === 'string' && msg.reason ? msg.reason : 'the server could not store it';
    const own = [...ui.log.querySelectorAll('.entry[data-kind="message"][data-own="true"]:not([data-not-sent])')]
      .reverse().find((e) => e.querySelector('.text').textContent === msg.text);
    if (own) {
      own.dataset.notSent = 'true';
      own.classList.add('not-sent');
      const flag = document.createElement('span');
      flag.className = 'flag';
      flag.textContent = 'not sent';
      own.append(flag);
    }
    // It will not be in a backlog, so it must not cancel a replayed copy.
    const i = recent.lastIndexOf(myName + '\n' + msg.text);
    if (i >= 0) recent.splice(i, 1);
    addSystem('Your message was not sent: ' + reason + '. Nobody received it; you can send it again.');
    if (ui.messageInput.value === '') ui.messageInput.value = msg.text;
  }

  function remember(key) {
    recent.push(key);
    if (recent.length > RECENT_KEEP) recent.shift();
  }

  // ----------------------------------------------------------------- rooms

  // The server's rule (see README): why `name` is no room name, or null.
  function roomProblem(name) {
    if (name.length === 0) return 'Please enter a room name.';
    if (name.length > MAX_ROOM_CHARS) return 'A room name has at most ' + MAX_ROOM_CHARS + ' characters. ' + ROOM_RULE;
    if (!/^[A-Za-z0-9_-]+$/.test(name)) return '“' + name + '” is not a room name. ' + ROOM_RULE;
    return null;
  }

  // The room the address names: /#NAME, or the lobby without a hash.
  function roomFromLocation() {
    let name = location.hash.replace(/^#/, '');
    try {
      name = decodeURIComponent(name);
    } catch {
      // Keep the raw text: it is refused below as not a room name.
    }
    if (name === '') return { room: LOBBY };
    const problem = roomProblem(name);
    return problem ? { problem } : { room: name.toLowerCase() };
  }

  const roomHref = (name) => location.pathname + location.search + (name === LOBBY ? '' : '#' + name);

  function showRoomError(text) {
    ui.roomError.textContent = text || '';
    ui.roomError.hidden = !text;
    ui.roomInput.setAttribute('aria-invalid', text ? 'true' : 'false');
  }

  function showRoom(name) {
    ui.roomLabel.textContent = '#' + name;
    ui.nameRoom.textContent = '#' + name;
    document.title = '#' + name + ' · wschat';
  }

  const here = () => location.pathname + location.search + location.hash;

  // Follows the address: called at start and on back/forward and hash changes.
  // (A hash change fires both popstate and hashchange; the second finds the
  // address already where we are, and changes nothing.)
  function onLocation() {
    if (room !== null && here() === roomHref(room)) return;
    const want = roomFromLocation();
    if (want.problem) {
      showRoomError(want.problem);
      // The address names where we are (the lobby when the page was opened so).
      history.replaceState(null, '', roomHref(room === null ? LOBBY : room));
      if (room === null) enterRoom(LOBBY);
      return;
    }
    showRoomError('');
    const canonical = roomHref(want.room);
    if (here() !== canonical) {
      history.replaceState(null, '', canonical); // #Team-A is #team-a, #lobby is /
    }
    enterRoom(want.room);
  }

  // Leaves the current room (a clean close, no "connection lost") and joins
  // `name` under the same name, or waits for a name if none is chosen yet.
  function enterRoom(name) {
    if (name === room) {
      // Asked for again after a refusal (e.g. the cap on rooms): try once more.
      if (!ws && wantedName !== null && retryTimer === null) {
        attempt = 0;
        connect();
      }
      return;
    }
    dropSocket();
    room = name;
    delete document.body.dataset.room;
    joined = false;
    everJoined = false;
    members.clear();
    recent.length = 0;
    backlogSkip = new Map();
    ui.log.replaceChildren();
    renderMembers();
    updateComposer();
    showRoom(name);
    ui.nameError.hidden = true; // a refusal was about the room we left
    if (wantedName !== null) {
      attempt = 0;
      connect(); // the open handler sends the name
    } else {
      setStatus('disconnected', 'Disconnected');
    }
  }

  // Closes the current socket on purpose: its events are ignored from now on.
  function dropSocket() {
    clearTimers();
    const sock = ws;
    ws = null;
    if (!sock) return;
    sock.onmessage = null;
    sock.onclose = null;
    if (sock.readyState === WebSocket.OPEN) {
      sock.close(1000, 'switching rooms');
    } else if (sock.readyState === WebSocket.CONNECTING) {
      // Closing a socket that is still connecting makes the browser log an
      // error; close it as soon as it opens instead.
      sock.onopen = () => sock.close(1000, 'switching rooms');
    }
  }

  ui.roomForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = ui.roomInput.value.trim().replace(/^#/, '');
    const problem = roomProblem(name);
    if (problem) {
      showRoomError(problem);
      ui.roomInput.focus();
      return;
    }
    showRoomError('');
    ui.roomInput.value = '';
    const href = roomHref(name.toLowerCase());
    if (href !== here()) history.pushState(null, '', href);
    enterRoom(name.toLowerCase()); // the same room again retries a refused join
  });

  // Back and forward between rooms; a hash typed into the address bar.
  window.addEventListener('popstate', onLocation);
  window.addEventListener('hashchange', onLocation);

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

  // One line for many joins and leaves: "25 joined, 3 left".
  function addSummary(kind, came, went) {
    const parts = [];
    if (came.length) parts.push(came.length + ' joined');
    if (went.length) parts.push(went.length + ' left');
    const text = (kind === 'members' ? 'Member list refreshed: ' : '') + parts.join(', ');
    const span = document.createElement('span');
    span.className = 'text';
    span.textContent = text;
    appendEntry('presence', [span, timeStamp()], (div) => {
      div.dataset.summary = kind;
      div.dataset.joined = String(came.length);
      div.dataset.left = String(went.length);
      // The names, for a pointer hovering the line (set as text, never HTML).
      div.title = [came.length ? 'Joined: ' + came.join(', ') : '', went.length ? 'Left: ' + went.join(', ') : '']
        .filter(Boolean).join('\n');
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
  onLocation();
})();
