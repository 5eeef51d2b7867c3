-- expect: error limit string.gsub: result is larger than
-- A replacement function that returns ever longer strings meets the
-- result's cap.
function handle(e, s)
  local big = string.rep("y", 60000)
  return (string.gsub(string.rep("x", 1000), "x", function() return big end))
end
