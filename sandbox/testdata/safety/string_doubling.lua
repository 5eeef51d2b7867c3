-- expect: error limit string concatenation is larger than 1048576 bytes
-- max: 500ms
-- s = s .. s doubles a string to gigabytes in about thirty instructions,
-- each one step the deadline cannot interrupt; .. is capped instead.
function handle(e, s)
  local x = "x"
  while true do x = x .. x end
end
