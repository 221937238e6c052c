//! Lua scripts of the Redis directory (one atomic step each).
//!
//! Owns the Redis data model. Rooms are placed per *pool*: a region and a game mode, written
//! `<region>/<mode>` (neither may contain `/`). With prefix `P` (configurable, so tests and
//! tenants never collide):
//!
//! | key | type | content | lifetime |
//! |---|---|---|---|
//! | `P node:<id>` | hash | region, url, state, drain, cap, rooms, humans, modes (`a,b`), and `cap:<mode>`, `rooms:<mode>`, `humans:<mode>` per mode | heartbeat TTL |
//! | `P node:<id>:rooms` | set | room ids the node reported last | heartbeat TTL |
//! | `P node:<id>:pending:<mode>` | zset | rooms of the mode opened by the matchmaker, by expiry | reservation TTL |
//! | `P room:<id>` | hash | region, node, humans, bots, state, tick, joinable, pending, mode, private, lobby (JSON, `''` for none) | heartbeat (or reservation) TTL |
//! | `P room:<id>:res` | zset | reservation nonces, by expiry | reservation TTL |
//! | `P room:<id>:joined` | zset | nonces of confirmed reservations, by confirm time | confirm hold |
//! | `P pool:<pool>:fill` | zset | placeable rooms, by humans + reservations (never a private lobby) | entries pruned when read |
//! | `P pool:<pool>:lobbies` | zset | rooms with a lobby, all scored 0 so they page in id order (`ZRANGEBYLEX`) | entries pruned when read |
//! | `P pool:<pool>:open` | zset | ACTIVE nodes with a free room slot of the mode, by humans | entries pruned when read |
//! | `P pool:<pool>:nodes` | hash | node → `expiry:room capacity of the mode:humans in the mode` (0 when draining) | fields pruned when read |
//! | `P pool:<pool>:res` | zset | `room|nonce` of every reservation of the pool, by expiry; an expired one re-ranks its room | pruned when read |
//! | `P pool:<pool>:opened` | string | counter of rooms the matchmakers opened (optimistic check) | none |
//! | `P region:<r>:members` | zset | nodes of the region, by expiry (region snapshots) | pruned when read |
//!
//! Placement reads only the top `limit` entries of `fill` and `open` (O(log n + limit)), one
//! `nodes` hash (O(nodes in region), far fewer than rooms) and one `res` count; reading writes
//! nothing but the clean-up of entries whose keys expired. The `fill` scores are kept exact by
//! every writer (reserve, expiry, confirm, heartbeat), so a candidate costs one `HMGET`.
//! Every script counts the Redis commands it runs (`rcall`) and reports the count, so tests can
//! check that a matchmake's work does not grow with the number of rooms.
//!
//! Races are settled inside the reserve scripts. Placement (Rust, `placement.rs`) decides from
//! a read; if the decided room filled up meanwhile, or a new room was decided but another
//! matchmake opened one since (the region's `opened` counter changed), the script places the
//! player again with placement's first and last rules — the fullest open room below the soft
//! cap, else a new room on the least-loaded node (`place_after_race`). So a burst of
//! concurrent matchmakes that all read "no room" fills one room after another, spread over the
//! nodes, at one read and one reserve each, instead of each opening a room on the same node or
//! re-reading once per lost race. The directory suite holds both directories to the same
//! outcomes (`a_concurrent_burst_fills_rooms_one_after_another_across_nodes`).
//!
//! A confirmed seat stops counting at the room's first heartbeat sampled after the confirm (the
//! node's `humans` then includes the player); until then, or if heartbeats stop, it counts
//! until its hold ends.
//! Keys are computed inside the scripts, so this assumes one Redis (or one Redis Cluster hash
//! slot), not a sharded cluster. Must not call `redis.call` directly anywhere but in `rcall`.

pub(crate) const PRELUDE: &str = r#"
local P = ARGV[1]
local NOW = tonumber(ARGV[2])
local touched = 0
local function rcall(...)
  touched = touched + 1
  return redis.call(...)
end
local function room_key(id) return P .. 'room:' .. id end
local function res_key(id) return P .. 'room:' .. id .. ':res' end
local function node_key(id) return P .. 'node:' .. id end
local function node_rooms_key(id) return P .. 'node:' .. id .. ':rooms' end
local function node_pending_key(id, mode) return P .. 'node:' .. id .. ':pending:' .. mode end
local function pool(region, mode) return region .. '/' .. mode end
local function fill_key(p) return P .. 'pool:' .. p .. ':fill' end
local function open_key(p) return P .. 'pool:' .. p .. ':open' end
local function totals_key(p) return P .. 'pool:' .. p .. ':nodes' end
local function pool_res_key(p) return P .. 'pool:' .. p .. ':res' end
local function opened_key(p) return P .. 'pool:' .. p .. ':opened' end
local function lobbies_key(p) return P .. 'pool:' .. p .. ':lobbies' end
local function members_key(r) return P .. 'region:' .. r .. ':members' end
local function joined_key(id) return P .. 'room:' .. id .. ':joined' end
local DEFAULT_MODE = 'arena'

local function split_modes(text)
  local list = {}
  for mode in string.gmatch(text or DEFAULT_MODE, '[^,]+') do list[#list + 1] = mode end
  return list
end

local node_cache = {}
-- A node with its effective state (DRAINING if the node or the matchmaker says so), or nil.
local function load_node(id)
  local cached = node_cache[id]
  if cached ~= nil then
    if cached == false then return nil end
    return cached
  end
  local f = rcall('HMGET', node_key(id), 'region', 'url', 'state', 'drain', 'cap', 'rooms', 'humans', 'modes')
  if not f[1] then
    node_cache[id] = false
    return nil
  end
  local state = f[3]
  if f[4] == '1' then state = 'DRAINING' end
  local node = {region = f[1], url = f[2], state = state, cap = tonumber(f[5]) or 0,
    rooms = tonumber(f[6]) or 0, humans = tonumber(f[7]) or 0, modes = {}, mode_list = split_modes(f[8])}
  local fields = {}
  for _, mode in ipairs(node.mode_list) do
    fields[#fields + 1] = 'cap:' .. mode
    fields[#fields + 1] = 'rooms:' .. mode
    fields[#fields + 1] = 'humans:' .. mode
  end
  local g = rcall('HMGET', node_key(id), unpack(fields))
  for i, mode in ipairs(node.mode_list) do
    -- A node from before modes has only `cap`, `rooms` and `humans`: its one mode is the arena.
    local legacy = mode == DEFAULT_MODE
    local cap = tonumber(g[3 * i - 2]) or (legacy and node.cap or 0)
    local rooms = tonumber(g[3 * i - 1]) or (legacy and node.rooms or 0)
    local humans = tonumber(g[3 * i]) or (legacy and node.humans or 0)
    node.modes[mode] = {cap = cap, rooms = rooms, humans = humans}
  end
  node_cache[id] = node
  return node
end

local function live_count(key)
  rcall('ZREMRANGEBYSCORE', key, '-inf', NOW)
  return rcall('ZCARD', key)
end

-- A room with its live reservation count, or nil if its key expired.
local function load_room(id)
  local f = rcall('HMGET', room_key(id), 'region', 'node', 'humans', 'bots', 'state', 'tick', 'joinable', 'pending', 'mode', 'private')
  if not f[1] then return nil end
  local mode = f[9] or DEFAULT_MODE
  return {id = id, region = f[1], node = f[2], humans = tonumber(f[3]) or 0, bots = tonumber(f[4]) or 0,
    state = f[5], tick = tonumber(f[6]) or 0, joinable = f[7] == '1', pending = f[8] == '1',
    mode = mode, pool = pool(f[1], mode), res = live_count(res_key(id)), private = f[10] == '1'}
end

-- The room takes players at all (an override into a private lobby too).
local function room_open(room, node)
  return node ~= nil and node.state == 'ACTIVE' and room.joinable
    and (room.state == 'WARM' or room.state == 'ACTIVE')
end

-- The room takes fresh players from quick play: open, and not a private lobby.
local function room_listed(room, node)
  return room_open(room, node) and not room.private
end

-- Puts the room in its pool's fill index with fresh occupancy, or takes it out.
local function reindex_room(id, pool_hint)
  local room = load_room(id)
  if room == nil then
    if pool_hint then rcall('ZREM', fill_key(pool_hint), id) end
    return nil
  end
  local node = load_node(room.node)
  if room_listed(room, node) then
    rcall('ZADD', fill_key(room.pool), room.humans + room.res, id)
  else
    rcall('ZREM', fill_key(room.pool), id)
  end
  return room
end

-- Takes the node out of the indexes of one pool.
local function unindex_node_pool(id, p)
  rcall('ZREM', open_key(p), id)
  rcall('HDEL', totals_key(p), id)
end

-- Refreshes the node's totals and its place in the open-nodes index of every mode it runs. A
-- node that is gone leaves stale entries, which every reader prunes.
local function reindex_node(id)
  node_cache[id] = nil
  local node = load_node(id)
  if node == nil then return nil end
  local expires = NOW + rcall('PTTL', node_key(id))
  rcall('ZADD', members_key(node.region), expires, id)
  for _, mode in ipairs(node.mode_list) do
    local p = pool(node.region, mode)
    local capacity = node.modes[mode]
    if node.state == 'ACTIVE' then
      local pending = live_count(node_pending_key(id, mode))
      rcall('HSET', totals_key(p), id, string.format('%d:%d:%d', expires, capacity.cap, capacity.humans))
      if capacity.rooms + pending < capacity.cap then
        rcall('ZADD', open_key(p), node.humans, id)
      else
        rcall('ZREM', open_key(p), id)
      end
    else
      rcall('HSET', totals_key(p), id, string.format('%d:0:0', expires))
      rcall('ZREM', open_key(p), id)
    end
  end
  return node
end

local function remove_room(id)
  local f = rcall('HMGET', room_key(id), 'region', 'mode')
  if f[1] then
    local p = pool(f[1], f[2] or DEFAULT_MODE)
    rcall('ZREM', fill_key(p), id)
    rcall('ZREM', lobbies_key(p), id)
    local nonces = rcall('ZRANGE', res_key(id), 0, -1)
    for i, nonce in ipairs(nonces) do nonces[i] = id .. '|' .. nonce end
    if #nonces > 0 then rcall('ZREM', pool_res_key(p), unpack(nonces)) end
  end
  rcall('DEL', room_key(id), res_key(id), joined_key(id))
end

local function remove_node(id)
  local f = rcall('HMGET', node_key(id), 'region', 'modes')
  local region, modes = f[1], split_modes(f[2])
  local lists = {rcall('SMEMBERS', node_rooms_key(id))}
  for _, mode in ipairs(modes) do lists[#lists + 1] = rcall('ZRANGE', node_pending_key(id, mode), 0, -1) end
  for _, list in ipairs(lists) do
    for _, room_id in ipairs(list) do
      if rcall('HGET', room_key(room_id), 'node') == id then remove_room(room_id) end
    end
  end
  if region then
    for _, mode in ipairs(modes) do unindex_node_pool(id, pool(region, mode)) end
    rcall('ZREM', members_key(region), id)
  end
  for _, mode in ipairs(modes) do rcall('DEL', node_pending_key(id, mode)) end
  rcall('DEL', node_key(id), node_rooms_key(id))
  node_cache[id] = nil
end

local function extend_ttl(key, ttl)
  if rcall('PTTL', key) < ttl then rcall('PEXPIRE', key, ttl) end
end

-- Takes a seat in an open room below CAP: the reservation counts at once. Returns the reply.
local function reserve_in(room, node, nonce, exp)
  local ttl = exp - NOW
  -- `room` was loaded by this script, its reservations pruned: one more seat is exact.
  rcall('ZADD', fill_key(room.pool), room.humans + room.res + 1, room.id)
  rcall('ZADD', res_key(room.id), exp, nonce)
  extend_ttl(res_key(room.id), ttl)
  rcall('ZADD', pool_res_key(room.pool), exp, room.id .. '|' .. nonce)
  if room.pending then
    -- Not reported by its node yet: the room lives as long as its reservations.
    extend_ttl(room_key(room.id), ttl)
    rcall('ZADD', node_pending_key(room.node, room.mode), 'GT', exp, room.id)
    extend_ttl(node_pending_key(room.node, room.mode), ttl)
  end
  return cjson.encode({status = 'ok', room = room.id, node = room.node, region = room.region,
    mode = room.mode, url = node.url, touched = touched})
end

-- Placement's first choice, re-read inside a reserve script after the chosen room filled up or
-- another matchmake opened a room: the fullest room of the region open to fresh players below
-- SOFT (at most 4 index entries read), with its node, or nil. This is what the next candidates
-- read would find, without the round trip: under a burst every concurrent matchmake lands in
-- the room being filled instead of re-reading once per lost race.
local function fullest_open_room(p, soft, max_tick)
  for _, id in ipairs(rcall('ZREVRANGEBYSCORE', fill_key(p), '(' .. soft, 1, 'LIMIT', 0, 4)) do
    local room = load_room(id)
    if room then
      local node = load_node(room.node)
      if room_listed(room, node) and room.tick <= max_tick and room.humans + room.res < soft then
        return room, node
      end
    end
  end
  return nil
end

-- Rooms of a mode a node runs or will run (reported + opened by matchmakers, not yet reported).
local function node_rooms(id, node, mode)
  local capacity = node.modes[mode]
  if capacity == nil then return 0 end
  return capacity.rooms + rcall('ZCOUNT', node_pending_key(id, mode), '(' .. NOW, '+inf')
end

-- How many rooms of a mode the node may run (0 if it does not run the mode).
local function node_cap(node, mode)
  local capacity = node.modes[mode]
  if capacity == nil then return 0 end
  return capacity.cap
end

-- Placement's last choice, for the same races: the ACTIVE node of the region with a free room
-- slot of the mode and the fewest humans, then rooms, then the smallest id (at most 4 entries
-- of the open index read). Returns its id and node, or nil.
local function least_loaded_node(region, mode)
  local best_id, best, best_rooms
  for _, id in ipairs(rcall('ZRANGE', open_key(pool(region, mode)), 0, 3)) do
    local node = load_node(id)
    if node and node.state == 'ACTIVE' and node.region == region then
      local rooms = node_rooms(id, node, mode)
      if rooms < node_cap(node, mode) and (best == nil or node.humans < best.humans
          or (node.humans == best.humans and (rooms < best_rooms or (rooms == best_rooms and id < best_id)))) then
        best_id, best, best_rooms = id, node, rooms
      end
    end
  end
  return best_id, best
end

-- Opens `room_id` on the node with its first seat (the node creates the room when the player
-- arrives with the token); a private lobby stays out of the fill index from the start.
-- Returns the reply.
local function open_room(node_id, node, room_id, mode, nonce, exp, private)
  if rcall('EXISTS', room_key(room_id)) == 1 then return cjson.encode({status = 'collision', touched = touched}) end
  local ttl = exp - NOW
  local p = pool(node.region, mode)
  rcall('HSET', room_key(room_id), 'region', node.region, 'node', node_id, 'humans', 0, 'bots', 0,
    'state', 'WARM', 'tick', 0, 'joinable', '1', 'pending', '1', 'mode', mode,
    'private', private and '1' or '0', 'lobby', '')
  rcall('PEXPIRE', room_key(room_id), ttl)
  rcall('ZADD', res_key(room_id), exp, nonce)
  rcall('PEXPIRE', res_key(room_id), ttl)
  rcall('ZADD', pool_res_key(p), exp, room_id .. '|' .. nonce)
  rcall('ZADD', node_pending_key(node_id, mode), exp, room_id)
  extend_ttl(node_pending_key(node_id, mode), ttl)
  rcall('INCR', opened_key(p))
  reindex_room(room_id, p)
  reindex_node(node_id)
  return cjson.encode({status = 'ok', room = room_id, node = node_id, region = node.region,
    mode = mode, url = node.url, touched = touched})
end

-- After an automatic placement lost its race: the fullest open room of the pool, else a new
-- room (id `spare_room`) on the least-loaded node, else nil.
local function place_after_race(region, mode, soft, max_tick, spare_room, nonce, exp)
  local room, node = fullest_open_room(pool(region, mode), soft, max_tick)
  if room then return reserve_in(room, node, nonce, exp) end
  local node_id
  node_id, node = least_loaded_node(region, mode)
  if node_id then return open_room(node_id, node, spare_room, mode, nonce, exp, false) end
  return nil
end
"#;

/// ARGV: prefix, now, ttl_ms, node JSON, rooms JSON array. Returns the command count.
pub(crate) const HEARTBEAT: &str = r#"
local TTL = tonumber(ARGV[3])
local node = cjson.decode(ARGV[4])
local rooms = cjson.decode(ARGV[5])
local id = node.nodeId
local old = rcall('HMGET', node_key(id), 'region', 'modes')
if old[1] and old[1] ~= node.region then
  remove_node(id)
  old = {false, false}
end
-- `node.modes` is the node's capacity per mode (the caller fills it in for nodes from before
-- modes); a mode the node stopped running leaves its pool at once.
local names, fields = {}, {}
for _, capacity in ipairs(node.modes) do
  names[#names + 1] = capacity.mode
  fields[#fields + 1] = 'cap:' .. capacity.mode
  fields[#fields + 1] = capacity.roomCapacity
  fields[#fields + 1] = 'rooms:' .. capacity.mode
  fields[#fields + 1] = capacity.rooms
  fields[#fields + 1] = 'humans:' .. capacity.mode
  fields[#fields + 1] = capacity.humans
end
if old[1] then
  local kept = {}
  for _, mode in ipairs(names) do kept[mode] = true end
  for _, mode in ipairs(split_modes(old[2])) do
    if not kept[mode] then
      unindex_node_pool(id, pool(old[1], mode))
      rcall('HDEL', node_key(id), 'cap:' .. mode, 'rooms:' .. mode, 'humans:' .. mode)
    end
  end
end
rcall('HSET', node_key(id), 'region', node.region, 'url', node.publicUrl, 'state', node.state,
  'cap', node.roomCapacity, 'rooms', math.max(node.rooms, #rooms), 'humans', node.humans,
  'modes', table.concat(names, ','), unpack(fields))
rcall('PEXPIRE', node_key(id), TTL)
local reported = {}
for _, room in ipairs(rooms) do reported[room.roomId] = true end
for _, old in ipairs(rcall('SMEMBERS', node_rooms_key(id))) do
  if not reported[old] and rcall('HGET', room_key(old), 'node') == id then remove_room(old) end
end
rcall('DEL', node_rooms_key(id))
local batch = {}
for _, room in ipairs(rooms) do
  batch[#batch + 1] = room.roomId
  if #batch == 500 then
    rcall('SADD', node_rooms_key(id), unpack(batch))
    batch = {}
  end
end
if #batch > 0 then rcall('SADD', node_rooms_key(id), unpack(batch)) end
rcall('PEXPIRE', node_rooms_key(id), TTL)
for _, room in ipairs(rooms) do
  local key = room_key(room.roomId)
  local owner = rcall('HGET', key, 'node')
  -- A room id another live node owns stays with it until that node stops reporting it.
  if not owner or owner == id then
    local mode = room.mode or DEFAULT_MODE
    local lobby = room.lobby
    if lobby == cjson.null then lobby = nil end
    rcall('HSET', key, 'region', room.region, 'node', id, 'humans', room.humans, 'bots', room.bots,
      'state', room.state, 'tick', room.tickP95Ms, 'joinable', room.joinable and '1' or '0', 'pending', '0',
      'mode', mode, 'private', (lobby and lobby.private) and '1' or '0',
      'lobby', lobby and cjson.encode(lobby) or '')
    if lobby then
      rcall('ZADD', lobbies_key(pool(room.region, mode)), 0, room.roomId)
    else
      rcall('ZREM', lobbies_key(pool(room.region, mode)), room.roomId)
    end
    rcall('PEXPIRE', key, TTL)
    rcall('ZREM', node_pending_key(id, mode), room.roomId)
    -- Players who joined before this sample are in `humans` now: their seats stop counting.
    local joined = rcall('ZRANGEBYSCORE', joined_key(room.roomId), '-inf', NOW)
    if #joined > 0 then
      rcall('ZREM', res_key(room.roomId), unpack(joined))
      for i, nonce in ipairs(joined) do joined[i] = room.roomId .. '|' .. nonce end
      rcall('ZREM', pool_res_key(pool(room.region, mode)), unpack(joined))
      rcall('ZREMRANGEBYSCORE', joined_key(room.roomId), '-inf', NOW)
    end
    reindex_room(room.roomId, nil)
  end
end
reindex_node(id)
return touched
"#;

/// ARGV: prefix, now, soft cap, limit, max tick p95 (ms), override room ('' for none), mode,
/// regions... Returns JSON: for each region, the candidates of its pool for the mode.
pub(crate) const CANDIDATES: &str = r#"
local SOFT = tonumber(ARGV[3])
local LIMIT = tonumber(ARGV[4])
local MAX_TICK = tonumber(ARGV[5])
local OVERRIDE = ARGV[6]
local MODE = ARGV[7]
-- '1': the request opens a new room whatever rooms exist (a custom lobby): read nodes only.
local FRESH = ARGV[8] == '1'
local function candidate(room)
  local node = load_node(room.node)
  if node == nil then return nil end
  return {id = room.id, node = room.node, region = room.region, state = room.state, mode = room.mode,
    joinable = room.joinable, humans = room.humans, res = room.res, tick = room.tick, nstate = node.state,
    private = room.private}
end
-- A room of the fill index, with its reservations taken from the index score (kept exact by
-- every writer), or nil (and out of the index) if its key expired.
local function indexed_room(p, id, score)
  local f = rcall('HMGET', room_key(id), 'region', 'node', 'humans', 'state', 'tick', 'joinable', 'mode')
  if not f[1] then
    rcall('ZREM', fill_key(p), id)
    return nil
  end
  local humans = tonumber(f[3]) or 0
  return {id = id, region = f[1], node = f[2], humans = humans, state = f[4], mode = f[7] or DEFAULT_MODE,
    tick = tonumber(f[5]) or 0, joinable = f[6] == '1', res = math.max(0, tonumber(score) - humans)}
end
-- Up to LIMIT rooms of one score range, skipping rooms too slow for fresh players (at most
-- 4 x LIMIT index entries are read, so a node of slow rooms cannot make this scan the region).
local function read_rooms(view, p, command, from, to)
  local found, offset = 0, 0
  while found < LIMIT and offset < 4 * LIMIT do
    local page = rcall(command, fill_key(p), from, to, 'WITHSCORES', 'LIMIT', offset, LIMIT)
    for j = 1, #page, 2 do
      local room = indexed_room(p, page[j], page[j + 1])
      if room and room.tick <= MAX_TICK then
        local c = candidate(room)
        if c then
          view.rooms[#view.rooms + 1] = c
          found = found + 1
        end
      end
    end
    if #page < 2 * LIMIT then break end
    offset = offset + LIMIT
  end
end
local out = {regions = {}}
if OVERRIDE ~= '' then
  local room = load_room(OVERRIDE)
  if room then out.override = candidate(room) end
end
for i = 9, #ARGV do
  local region = ARGV[i]
  local p = pool(region, MODE)
  local view = {region = region, rooms = {}, nodes = {}}
  -- Seats whose reservation ran out are free again: re-rank those rooms first (at most 1,000
  -- per call; each expiry is handled once, so this is amortized O(1) per reservation).
  local expired = rcall('ZRANGEBYSCORE', pool_res_key(p), '-inf', NOW, 'LIMIT', 0, 1000)
  if #expired > 0 then
    rcall('ZREM', pool_res_key(p), unpack(expired))
    local seen = {}
    for _, member in ipairs(expired) do
      local room_id = string.match(member, '^(.*)|')
      if room_id and not seen[room_id] then
        seen[room_id] = true
        reindex_room(room_id, p)
      end
    end
  end
  -- Placement takes an occupied room over an empty one and any room over a new one, so the
  -- later reads are needed only when the earlier ones found nothing.
  if not FRESH then
    read_rooms(view, p, 'ZREVRANGEBYSCORE', '(' .. SOFT, 1)
    if #view.rooms == 0 then read_rooms(view, p, 'ZRANGEBYSCORE', 0, 0) end
  end
  local node_ids = {}
  if #view.rooms == 0 then node_ids = rcall('ZRANGE', open_key(p), 0, LIMIT - 1) end
  for _, node_id in ipairs(node_ids) do
    local node = load_node(node_id)
    if node == nil then
      unindex_node_pool(node_id, p)
    else
      view.nodes[#view.nodes + 1] = {id = node_id, state = node.state, cap = node_cap(node, MODE),
        rooms = node_rooms(node_id, node, MODE), humans = node.humans}
    end
  end
  local cap_rooms, humans = 0, 0
  local fields = rcall('HGETALL', totals_key(p))
  for j = 1, #fields, 2 do
    local exp, cap, h = string.match(fields[j + 1], '^(%d+):(%d+):(%d+)$')
    if exp and tonumber(exp) > NOW then
      cap_rooms = cap_rooms + tonumber(cap)
      humans = humans + tonumber(h)
    else
      rcall('HDEL', totals_key(p), fields[j])
    end
  end
  view.capRooms = cap_rooms
  view.humans = humans
  view.reserved = rcall('ZCOUNT', pool_res_key(p), '(' .. NOW, '+inf')
  view.opened = tonumber(rcall('GET', opened_key(p))) or 0
  out.regions[#out.regions + 1] = view
end
out.touched = touched
return cjson.encode(out)
"#;

/// ARGV: prefix, now, room, cap, nonce, expiry, then for an automatic placement (all '' for an
/// override, which must get the room it named) soft cap, max tick and a spare room id. Returns
/// JSON with `status` and the `room` of the seat: an automatic placement whose room filled up
/// since the read is placed again here (fullest open room, else a new room on the least-loaded
/// node), so a burst does not pay one round trip per lost race.
pub(crate) const RESERVE_EXISTING: &str = r#"
local ROOM = ARGV[3]
local CAP = tonumber(ARGV[4])
local NONCE = ARGV[5]
local EXP = tonumber(ARGV[6])
local SOFT = tonumber(ARGV[7])
local MAX_TICK = tonumber(ARGV[8])
local SPARE_ROOM = ARGV[9]
local room = load_room(ROOM)
local status = 'ok'
local node = nil
if room == nil then
  status = 'gone'
else
  node = load_node(room.node)
  if not room_open(room, node) then
    status = 'closed'
  elseif room.humans + room.res >= CAP then
    status = 'full'
  end
end
if status == 'ok' then return reserve_in(room, node, NONCE, EXP) end
if room then reindex_room(ROOM, room.pool) end
if SOFT and room then
  local reply = place_after_race(room.region, room.mode, SOFT, MAX_TICK, SPARE_ROOM, NONCE, EXP)
  if reply then return reply end
end
return cjson.encode({status = status, touched = touched})
"#;

/// ARGV: prefix, now, region, mode, node, new room id, nonce, expiry, the pool's `opened`
/// counter as the candidates saw it, soft cap, max tick, private ('1'/'0'), fresh ('1': a
/// custom lobby, which must be a new room: never placed elsewhere after a race). Returns JSON
/// with `status` and the `room` of the seat. If another matchmake opened a room since the read, or the node can no longer take a
/// room, the player is placed again here (fullest open room, else the new room on the node that
/// is least loaded now): concurrent matchmakes that all saw "no room" fill one room after
/// another instead of each opening one on the same node.
pub(crate) const RESERVE_NEW_ROOM: &str = r#"
local REGION = ARGV[3]
local MODE = ARGV[4]
local NODE = ARGV[5]
local ROOM = ARGV[6]
local NONCE = ARGV[7]
local EXP = tonumber(ARGV[8])
local SEEN_OPENED = tonumber(ARGV[9])
local SOFT = tonumber(ARGV[10])
local MAX_TICK = tonumber(ARGV[11])
local PRIVATE = ARGV[12] == '1'
local FRESH_ROOM = ARGV[13] == '1'
local fresh = (tonumber(rcall('GET', opened_key(pool(REGION, MODE)))) or 0) == SEEN_OPENED
local node = load_node(NODE)
local usable = node ~= nil and node.region == REGION and node.state == 'ACTIVE'
  and node_rooms(NODE, node, MODE) < node_cap(node, MODE)
if (fresh or FRESH_ROOM) and usable then return open_room(NODE, node, ROOM, MODE, NONCE, EXP, PRIVATE) end
if node then reindex_node(NODE) end
if FRESH_ROOM then return cjson.encode({status = 'full', touched = touched}) end
local reply = place_after_race(REGION, MODE, SOFT, MAX_TICK, ROOM, NONCE, EXP)
if reply then return reply end
return cjson.encode({status = 'full', touched = touched})
"#;

/// ARGV: prefix, now, room, nonce, hold-until. Returns 1 if the reservation was live.
pub(crate) const CONFIRM: &str = r#"
local ROOM = ARGV[3]
local NONCE = ARGV[4]
local HOLD = tonumber(ARGV[5])
local score = rcall('ZSCORE', res_key(ROOM), NONCE)
if not score or tonumber(score) <= NOW then return 0 end
rcall('ZADD', res_key(ROOM), 'XX', 'LT', HOLD, NONCE)
local f = rcall('HMGET', room_key(ROOM), 'region', 'mode')
if f[1] then
  rcall('ZADD', pool_res_key(pool(f[1], f[2] or DEFAULT_MODE)), 'XX', 'LT', HOLD, ROOM .. '|' .. NONCE)
end
-- The room's next heartbeat sampled after NOW counts the player; it ends this seat then.
rcall('ZADD', joined_key(ROOM), NOW, NONCE)
extend_ttl(joined_key(ROOM), HOLD - NOW)
return 1
"#;

/// ARGV: prefix, now, node. Returns 1 if the node exists.
pub(crate) const DRAIN_NODE: &str = r#"
local NODE = ARGV[3]
if rcall('EXISTS', node_key(NODE)) == 0 then return 0 end
rcall('HSET', node_key(NODE), 'drain', '1')
node_cache[NODE] = nil
local lists = {rcall('SMEMBERS', node_rooms_key(NODE))}
for _, mode in ipairs(split_modes(rcall('HGET', node_key(NODE), 'modes'))) do
  lists[#lists + 1] = rcall('ZRANGE', node_pending_key(NODE, mode), 0, -1)
end
for _, list in ipairs(lists) do
  for _, room_id in ipairs(list) do reindex_room(room_id, nil) end
end
reindex_node(NODE)
return 1
"#;

/// ARGV: prefix, now, room. Returns the room's live reservations.
pub(crate) const RESERVED: &str = r#"
return live_count(res_key(ARGV[3]))
"#;

/// ARGV: prefix, now, node.
pub(crate) const REMOVE_NODE: &str = r#"
remove_node(ARGV[3])
return touched
"#;

/// ARGV: prefix, now, region. Returns JSON of every live node and room of the region.
pub(crate) const REGION_SNAPSHOT: &str = r#"
local REGION = ARGV[3]
local out = {nodes = {}, rooms = {}}
-- A member is live while its node hash exists, the same test placement's `load_node` makes
-- (the members score is an expiry computed from the caller's `now`, which can lag Redis's own):
-- a snapshot never drops a node that placement can still send players to.
for _, id in ipairs(rcall('ZRANGE', members_key(REGION), 0, -1)) do
  local node = load_node(id)
  if node == nil then
    rcall('ZREM', members_key(REGION), id)
  elseif node.region == REGION then
    local modes = {}
    local lists = {rcall('SMEMBERS', node_rooms_key(id))}
    for _, mode in ipairs(node.mode_list) do
      local capacity = node.modes[mode]
      modes[#modes + 1] = {mode = mode, roomCapacity = capacity.cap, rooms = capacity.rooms, humans = capacity.humans}
      lists[#lists + 1] = rcall('ZRANGEBYSCORE', node_pending_key(id, mode), '(' .. NOW, '+inf')
    end
    out.nodes[#out.nodes + 1] = {nodeId = id, region = REGION, publicUrl = node.url, state = node.state,
      roomCapacity = node.cap, rooms = node.rooms, humans = node.humans, modes = modes}
    for _, list in ipairs(lists) do
      for _, room_id in ipairs(list) do
        local room = load_room(room_id)
        if room and room.node == id then out.rooms[#out.rooms + 1] = room end
      end
    end
  end
end
return cjson.encode(out)
"#;

/// A room's status as `RoomStatus` JSON (camelCase, lobby decoded), or nil for a missing or
/// not yet reported room.
const ROOM_STATUS_JSON: &str = r#"
local function room_status(id)
  local f = rcall('HMGET', room_key(id), 'region', 'node', 'humans', 'bots', 'state', 'tick', 'joinable', 'pending', 'mode', 'lobby')
  if not f[1] or f[8] == '1' then return nil end
  local status = {roomId = id, region = f[1], nodeId = f[2], humans = tonumber(f[3]) or 0,
    bots = tonumber(f[4]) or 0, state = f[5], tickP95Ms = tonumber(f[6]) or 0, joinable = f[7] == '1',
    mode = f[9] or DEFAULT_MODE}
  if f[10] and f[10] ~= '' then status.lobby = cjson.decode(f[10]) end
  return status
end
"#;

/// ARGV: prefix, now, pool, after ('' = from the start), count. Returns a JSON array of up to
/// `count` `RoomStatus` with a lobby, in room id order after `after`; entries whose room
/// expired are dropped from the index on the way (at most 4 x count entries read).
pub(crate) fn lobby_rooms_script() -> String {
    format!(
        "{ROOM_STATUS_JSON}{}",
        r#"
local POOL = ARGV[3]
local AFTER = ARGV[4]
local COUNT = tonumber(ARGV[5])
local out = {}
local from = AFTER == '' and '-' or '(' .. AFTER
local read = 0
while #out < COUNT and read < 4 * COUNT do
  local ids = rcall('ZRANGEBYLEX', lobbies_key(POOL), from, '+', 'LIMIT', 0, COUNT)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    read = read + 1
    local status = room_status(id)
    if status == nil or status.lobby == nil then
      if rcall('EXISTS', room_key(id)) == 0 then rcall('ZREM', lobbies_key(POOL), id) end
    elseif #out < COUNT then
      out[#out + 1] = status
    end
    from = '(' .. id
  end
  if #ids < COUNT then break end
end
if #out == 0 then return '[]' end
return cjson.encode(out)
"#
    )
}

/// ARGV: prefix, now, room. Returns the room's `RoomStatus` JSON, or `null`.
pub(crate) fn room_status_script() -> String {
    format!(
        "{ROOM_STATUS_JSON}{}",
        r#"
local status = room_status(ARGV[3])
if status == nil then return 'null' end
return cjson.encode(status)
"#
    )
}
