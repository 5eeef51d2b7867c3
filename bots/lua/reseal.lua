-- Replace a hash field's value with the same value sealed anew, unless it
-- changed since it was read: start-up sealing and key rotation run on every
-- replica at once, and must not undo a write made meanwhile.
-- KEYS[1] the hash (a bot's channels or secrets)
-- ARGV[1] the field, ARGV[2] the SHA-1 of the value as read (the value
-- itself is not sent: it may still be in clear), ARGV[3] the new value
-- Returns 1 when replaced, 0 when the field changed or is gone.
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur or redis.sha1hex(cur) ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
