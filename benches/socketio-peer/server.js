// The socket.io peer of `wschat --redis` for scripts/bench --cluster: several of these processes
// share one chat room through Redis with socket.io's Redis streams adapter, written the way its
// documentation shows. The chat protocol is wschat's, carried as the argument of one socket.io
// event, `m`: the client sends its name and then its messages as strings; the server sends the
// same JSON events wschat sends (welcome, join, leave, message, name-refused).
//
// Differences a reader should know: socket.io keeps no history, so there is no backlog; the
// member list in `welcome` is `fetchSockets()` across the nodes (a request over Redis), and
// names are not made unique across nodes (nothing in socket.io does that atomically); a
// message reaches the sender's own node's members at once and the other nodes' through Redis.
//
//   node server.js PORT REDIS_URL     prints `listening on http://127.0.0.1:PORT/` once ready
'use strict';

const http = require('http');
const { Server } = require('socket.io');
const { createClient } = require('redis');
const { createAdapter } = require('@socket.io/redis-streams-adapter');

const ROOM = 'lobby';

async function main() {
  const [port, redisUrl] = process.argv.slice(2);
  if (!port || !redisUrl) {
    console.error('usage: node server.js PORT REDIS_URL');
    process.exit(2);
  }
  const redis = createClient({ url: redisUrl });
  redis.on('error', (e) => console.error('redis:', e.message));
  await redis.connect();

  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(redis),
    transports: ['websocket'],
    serveClient: false,
    // No heartbeat traffic during a benchmark run (the load generator answers pings anyway).
    pingInterval: 300000,
    pingTimeout: 60000,
    maxHttpBufferSize: 4096,
  });

  io.on('connection', (socket) => {
    let name = null;
    let joining = false;
    socket.on('m', async (text) => {
      if (typeof text !== 'string') return;
      if (name === null) {
        if (joining) return;
        const wanted = text.trim();
        if (!wanted || wanted.length > 32) {
          socket.emit('m', { type: 'name-refused', reason: 'a name is 1 to 32 characters' });
          return;
        }
        joining = true;
        let sockets;
        try {
          sockets = await io.in(ROOM).fetchSockets();
        } catch (e) {
          joining = false;
          socket.emit('m', { type: 'name-refused', reason: 'cannot list the room: ' + e.message });
          return;
        }
        const others = sockets.map((s) => s.data.name).filter((n) => typeof n === 'string');
        if (others.some((n) => n.toLowerCase() === wanted.toLowerCase())) {
          joining = false;
          socket.emit('m', { type: 'name-refused', reason: 'that name is taken: pick another' });
          return;
        }
        name = wanted;
        socket.data.name = name;
        socket.to(ROOM).emit('m', { type: 'join', name });
        socket.join(ROOM);
        socket.emit('m', { type: 'welcome', room: ROOM, name, members: others });
        return;
      }
      if (!text.trim()) return;
      socket.to(ROOM).emit('m', { type: 'message', from: name, text });
    });
    socket.on('disconnect', () => {
      if (name !== null) socket.to(ROOM).emit('m', { type: 'leave', name });
    });
  });

  httpServer.listen(Number(port), '127.0.0.1', () => {
    const { port: bound } = httpServer.address();
    process.stdout.write(`listening on http://127.0.0.1:${bound}/\n`);
  });
  const stop = () => {
    io.close();
    redis.quit().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
