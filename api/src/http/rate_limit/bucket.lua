-- One rate-limit decision on a token bucket kept in Redis, atomically: the same
-- arithmetic as `Bucket::take` / `Bucket::owe` in rate_limit.rs (refill by the elapsed
-- time up to the burst; a take of at most one burst, or a refusal saying how long until
-- it could pass; an owe that may go into debt down to minus one burst).
--
-- KEYS[1]  the bucket
-- ARGV[1]  rate, tokens per second
-- ARGV[2]  burst
-- ARGV[3]  cost, tokens
-- ARGV[4]  "take" or "owe"
-- ARGV[5]  optional: the time in microseconds (tests); otherwise the server's TIME, so
--          that instances whose clocks differ still agree on one bucket.
-- Returns {1, "0"} when taken (or owed), {0, wait} when refused, wait in seconds as
-- text (Redis would truncate a Lua number to an integer).
-- Redis before 5 replicates scripts verbatim and refuses writes after TIME unless told
-- to replicate the effects instead (the default, and a no-op, from Redis 5 on).
if redis.replicate_commands then
  redis.replicate_commands()
end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = math.min(tonumber(ARGV[3]), burst)
local now
if ARGV[5] ~= nil and ARGV[5] ~= '' then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- A missing bucket is a full one (keys expire once they would have refilled).
local tokens = burst
local last = now
local saved = redis.call('HMGET', KEYS[1], 't', 'l')
if saved[1] and saved[2] then
  tokens = tonumber(saved[1])
  last = tonumber(saved[2])
end
local elapsed = math.max(0, now - last) / 1000000
tokens = math.min(burst, tokens + elapsed * rate)

local wait = 0
if ARGV[4] == 'owe' then
  tokens = math.max(-burst, tokens - cost)
elseif tokens >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) / rate
end

-- Kept until it would be full again, then forgotten (which is the same thing).
local refill_ms = math.ceil((burst - tokens) / rate * 1000)
if refill_ms <= 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'l', string.format('%.17g', now))
  redis.call('PEXPIRE', KEYS[1], refill_ms + 1000)
end
if wait > 0 then
  return {0, string.format('%.17g', wait)}
end
return {1, '0'}
