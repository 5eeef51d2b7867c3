-- Add counts to fields of a bucket hash. A field's value is a list of
-- "index:value" pairs separated by commas, non-zero counts only, indexes
-- ascending; the script adds the given pairs to the stored ones. Then the
-- key expires at the end of its retention.
-- KEYS[1] bucket hash
-- ARGV[1] expiry (Unix seconds), ARGV[2] number of counts per field,
-- then pairs of ARGV: field, counts to add
-- Returns the number of fields changed.
local key, size = KEYS[1], tonumber(ARGV[2])
local function parse(s, into)
  for i, v in string.gmatch(s, '(%d+):(%-?%d+)') do
    i = tonumber(i)
    into[i] = (into[i] or 0) + tonumber(v)
  end
end
local n = 0
for a = 3, #ARGV, 2 do
  local field = ARGV[a]
  local sum = {}
  local old = redis.call('HGET', key, field)
  if old then
    parse(old, sum)
  end
  parse(ARGV[a + 1], sum)
  local out = {}
  for i = 0, size - 1 do
    local v = sum[i]
    if v and v ~= 0 then
      -- tostring keeps 14 digits; larger sums need an integer format.
      if v < 1e14 and v > -1e14 then
        out[#out + 1] = i .. ':' .. tostring(v)
      else
        out[#out + 1] = i .. ':' .. string.format('%.0f', v)
      end
    end
  end
  redis.call('HSET', key, field, table.concat(out, ','))
  n = n + 1
end
if n > 0 then
  redis.call('EXPIREAT', key, ARGV[1])
end
return n
