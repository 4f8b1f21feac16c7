//! The Lua scripts that change several keys at once. Redis runs a script alone, so each is
//! atomic: a name claim and its join entry, a leave and its entry, a dead node's cleanup, and
//! a snapshot are never seen half done, and each can be run twice without harm.

/// Claims a name and appends the join. KEYS: stream, members, node's rooms. ARGV: name key,
/// member value, MAXLEN, room, name, node, member. Returns `present` (this very claim is
/// recorded), `taken` or `joined`.
pub const JOIN: &str = r"
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current == ARGV[2] then return 'present' end
if current then return 'taken' end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*',
  'kind', 'join', 'name', ARGV[5], 'node', ARGV[6], 'member', ARGV[7])
return 'joined'
";

/// Lets go of a claim, if it is still this one, and appends the leave. KEYS: stream, members.
/// ARGV: name key, member value, MAXLEN, name, node, member. Returns 1 when it left.
pub const LEAVE: &str = r"
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*',
  'kind', 'leave', 'name', ARGV[4], 'node', ARGV[5], 'member', ARGV[6])
return 1
";

/// Removes a node whose liveness key is gone: each of its members leaves (claim released,
/// leave appended), then the node is forgotten. KEYS: nodes, the node's liveness key, its
/// rooms. ARGV: node, MAXLEN, room key prefix. Returns the members removed, or -1 when the
/// node is alive after all.
pub const CLEANUP: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local removed = 0
for _, room in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local stream = ARGV[3] .. room
  local members = stream .. ':members'
  local all = redis.call('HGETALL', members)
  for i = 1, #all, 2 do
    local node, member, name = string.match(all[i + 1], '^(%S+) (%S+) (.*)$')
    if node == ARGV[1] then
      redis.call('HDEL', members, all[i])
      redis.call('XADD', stream, 'MAXLEN', '~', ARGV[2], '*',
        'kind', 'leave', 'name', name, 'node', node, 'member', member)
      removed = removed + 1
    end
  end
end
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[1], ARGV[1])
return removed
";

/// Where a room stands, for a node starting to follow it. KEYS: stream, members, epoch. ARGV:
/// an epoch to set if the room has none, messages wanted. Returns the epoch, the newest entry
/// id (`0-0` for none), the newest messages (newest first, as entries) and the member names.
pub const SNAPSHOT: &str = r"
redis.call('SET', KEYS[3], ARGV[1], 'NX')
local epoch = redis.call('GET', KEYS[3])
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = '0-0'
if #newest > 0 then last = newest[1][1] end
local wanted = tonumber(ARGV[2])
local messages = {}
local upto = '+'
while #messages < wanted do
  local page = redis.call('XREVRANGE', KEYS[1], upto, '-', 'COUNT', 200)
  for _, entry in ipairs(page) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'kind' and fields[i + 1] == 'message' and #messages < wanted then
        table.insert(messages, entry)
      end
    end
  end
  if #page < 200 then break end
  upto = '(' .. page[#page][1]
end
local members = {}
local all = redis.call('HGETALL', KEYS[2])
for i = 2, #all, 2 do
  local name = string.match(all[i], '^%S+ %S+ (.*)$')
  if name then table.insert(members, name) end
end
return {epoch, last, messages, members}
";

/// What a reconnecting node checks about a room it follows. KEYS: stream, epoch. Returns the
/// epoch (nil when gone) and the newest entry id (`0-0` for none).
pub const CHECK: &str = r"
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = '0-0'
if #newest > 0 then last = newest[1][1] end
return {redis.call('GET', KEYS[2]), last}
";
