-- expect: error runtime xxxxxxxx
-- A huge error value is cut to the length of a log line wherever it is
-- shown (TestHugeErrorIsCapped checks the length).
function handle(e, s)
  error(string.rep("x", 60000) .. string.rep("y", 60000))
end
