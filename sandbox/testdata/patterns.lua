-- Lua pattern cases. testdata/patterns.golden is the output of Lua 5.1.5
-- itself on this file:
--
--   lua5.1 -e 'dofile("testdata/patterns.lua") io.write(handle())' > testdata/patterns.golden
--
-- TestPatternsGolden runs the same file in the sandbox and compares.

local function pack(...) return {n = select("#", ...), ...} end

-- quote does not use string.format("%q"), whose output differs between
-- implementations.
local function quote(s)
  local out = {}
  for i = 1, #s do
    local b = string.byte(s, i)
    if b >= 32 and b < 127 and b ~= 34 and b ~= 92 then
      out[#out + 1] = string.char(b)
    else
      out[#out + 1] = "\\" .. b
    end
  end
  return '"' .. table.concat(out) .. '"'
end

local function ser(r, from)
  local parts = {}
  for i = from, r.n do
    local v = r[i]
    if type(v) == "string" then parts[#parts + 1] = quote(v)
    elseif type(v) == "number" then parts[#parts + 1] = string.format("%.14g", v)
    else parts[#parts + 1] = tostring(v) end
  end
  return table.concat(parts, ", ")
end

local function all(s, p)
  local out = {}
  for a, b, c in string.gmatch(s, p) do
    out[#out + 1] = "(" .. ser(pack(a, b, c), 1) .. ")"
  end
  return table.concat(out, " ")
end

local cases = {
  {"find plain", function() return string.find("hello world", "o w") end},
  {"find plain flag", function() return string.find("a.b.c", ".", 1, true) end},
  {"find special", function() return string.find("a.b.c", "%.") end},
  {"find init", function() return string.find("abcabc", "b", 3) end},
  {"find negative init", function() return string.find("abcabc", "b", -2) end},
  {"find init past end", function() return string.find("abc", "", 10) end},
  {"find init zero", function() return string.find("abc", "a", 0) end},
  {"find empty pattern", function() return string.find("abc", "") end},
  {"find empty subject", function() return string.find("", "a*") end},
  {"find none", function() return string.find("abc", "x") end},
  {"find captures", function() return string.find("key=value", "(%w+)=(%w+)") end},
  {"find position capture", function() return string.find("hello", "()ll()") end},
  {"match whole", function() return string.match("  trim me  ", "^%s*(.-)%s*$") end},
  {"match no capture", function() return string.match("abc123def", "%d+") end},
  {"match init", function() return string.match("abc123def456", "%d+", 7) end},
  {"match anchor fails", function() return string.match("abc", "^b") end},
  {"match anchor end", function() return string.match("abc", "c$") end},
  {"match dollar inside", function() return string.match("a$b", "a$b") end},
  {"match caret inside", function() return string.match("a^b", "a^b") end},
  {"match classes", function() return string.match("Ab1 _.\t", "(%a)(%l)(%d)(%s)(%w*)(%p)(%p)(%c)") end},
  {"match negated classes", function() return string.match("ab12CD  ", "(%D+)(%A+)(%L+)(%S*)") end},
  {"match upper hex", function() return string.match("0x1F zz", "0x(%x+)") end},
  {"match set", function() return string.match("hello-world_42", "[%w_-]+") end},
  {"match set range", function() return string.match("xyz abc", "[a-c]+") end},
  {"match negated set", function() return string.match("abc123", "[^%d]+") end},
  {"match bracket first", function() return string.match("a]b", "[]]") end},
  {"match negated bracket first", function() return string.match("]]ab", "[^]]+") end},
  {"match dash literal at end", function() return string.match("a-b", "[b-]+") end},
  {"match escaped percent", function() return string.match("100% sure", "%d+%%") end},
  {"match dot", function() return string.match("a\nb", "a.b") end},
  {"match star greedy", function() return string.match("<a><b>", "<(.*)>") end},
  {"match lazy", function() return string.match("<a><b>", "<(.-)>") end},
  {"match plus", function() return string.match("aaab", "(a+)b") end},
  {"match plus fails", function() return string.match("b", "a+b") end},
  {"match optional", function() return string.match("color colour", "colou?r", 2) end},
  {"match optional captures", function() return string.match("ab", "(a?)(a?)b") end},
  {"match backref", function() return string.match("say 'hi' or \"bye\"", "([\"'])(.-)%1") end},
  {"match backref empty", function() return string.match("xx", "()(x*)%2") end},
  {"backref to position capture", function() return string.find("00o00o010", "()%1") end},
  {"match balance", function() return string.match("f(a(b)c) d", "%b()") end},
  {"match balance unclosed", function() return string.match("f(a(b c", "%b()") end},
  {"match frontier", function() return string.match("THE (quick) fox", "%f[%a]%a+") end},
  {"match frontier end", function() return string.match("hello world", "%f[%w]%w+%f[%W]$") end},
  {"match frontier at start", function() return string.find("hello", "%f[%l]") end},
  {"match nested captures", function() return string.match("2024-05-01", "((%d+)-(%d+))-(%d+)") end},
  {"match zero", function() return string.match("a\0b", "%z") end},
  {"match zero class", function() return string.find("a\0b", "[%z]") end},
  {"match many captures", function() return string.match("abcdef", "(a)(b)(c)(d)(e)(f)") end},
  {"match empty capture", function() return string.match("abc", "()") end},
  {"match star on set", function() return string.match("aaa123", "[a]*(%d*)") end},
  {"match minus at end of pattern", function() return string.match("aaa", "a-") end},
  {"match minus then anchor", function() return string.match("aaa", "^a-$") end},
  {"gmatch words", function() return all("one two  three", "%a+") end},
  {"gmatch pairs", function() return all("a=1, b=2, c=3", "(%w+)=(%w+)") end},
  {"gmatch empty matches", function() return all("abc", "x*") end},
  {"gmatch positions", function() return all("aXbX", "()X") end},
  {"gmatch caret is literal", function() return all("^a^b", "^%a") end},
  {"gmatch lazy", function() return all("<1><2>", "<(.-)>") end},
  {"gsub basic", function() return string.gsub("hello world", "o", "0") end},
  {"gsub limit", function() return string.gsub("aaaa", "a", "b", 2) end},
  {"gsub zero limit", function() return string.gsub("aaaa", "a", "b", 0) end},
  {"gsub anchored", function() return string.gsub("aaaa", "^a", "b") end},
  {"gsub captures", function() return string.gsub("John Smith", "(%w+) (%w+)", "%2, %1") end},
  {"gsub whole match", function() return string.gsub("abc", "%w", "<%0>") end},
  {"gsub percent", function() return string.gsub("50", "%d+", "%0%%") end},
  {"gsub percent other", function() return string.gsub("x", "x", "%a") end},
  {"gsub empty pattern", function() return string.gsub("abc", "", "-") end},
  {"gsub empty matches", function() return string.gsub("abc", "b*", "-") end},
  {"gsub function", function() return string.gsub("1 2 3", "%d", function(d) return d * 2 end) end},
  {"gsub function nil keeps", function() return string.gsub("a b c", "%a", function(c) if c == "b" then return nil end return c:upper() end) end},
  {"gsub function false keeps", function() return string.gsub("ab", "%a", function() return false end) end},
  {"gsub function captures", function() return string.gsub("k1=v1;k2=v2", "(%w+)=(%w+)", function(k, v) return v .. "=" .. k end) end},
  {"gsub table", function() return string.gsub("$name is $age", "%$(%w+)", {name = "Ann", age = 7}) end},
  {"gsub table missing", function() return string.gsub("$x $y", "%$(%w+)", {x = "1"}) end},
  {"gsub table whole match", function() return string.gsub("a b", "%a", {a = "A"}) end},
  {"gsub position capture", function() return string.gsub("abc", "()", "%1") end},
  {"gsub number repl", function() return string.gsub("abc", "b", 5) end},
  {"gsub trim", function() return string.gsub("  x  ", "^%s*(.-)%s*$", "%1") end},
  {"gsub balance", function() return string.gsub("f(x) + g(y)", "%b()", "()") end},
  {"gsub frontier", function() return string.gsub("THE (quick) fox", "%f[%a]%a+", "W") end},
  {"gsub bad repl value", function() return string.gsub("a", "a", function() return {} end) end},
  {"gsub true repl value", function() return string.gsub("a", "a", function() return true end) end},
  {"gsub invalid capture in repl", function() return string.gsub("abc", "b", "%2") end},
  {"error pattern ends with percent", function() return string.find("a", "a%") end},
  {"error missing bracket", function() return string.find("a", "[a") end},
  {"error missing bracket escape", function() return string.find("a", "[a%") end},
  {"error unbalanced paren", function() return string.find("a", "(a") end},
  {"error invalid pattern capture", function() return string.find("a", "a)") end},
  {"error invalid backref", function() return string.find("aa", "(a)%2") end},
  {"error backref zero", function() return string.find("aa", "%0") end},
  {"error backref unfinished", function() return string.find("aa", "(a%1)") end},
  {"error frontier without set", function() return string.find("a", "%fa") end},
  {"error balance without args", function() return string.find("a", "%b") end},
  {"error balance one arg", function() return string.find("a", "%b(") end},
  {"error too many captures", function() return string.find(string.rep("a", 40), string.rep("(a)", 33)) end},
  {"upper bound 32 captures", function() return select("#", string.find(string.rep("a", 40), string.rep("(a)", 32))) end},
  {"string methods", function() return ("a,b,,c"):gsub(",", ";") end},
  {"match method", function() return ("x=1"):match("(%w)=(%d)") end},
}

function handle()
  local out = {}
  for _, c in ipairs(cases) do
    local r = pack(pcall(c[2]))
    if r[1] then
      out[#out + 1] = c[1] .. ": " .. ser(r, 2)
    else
      out[#out + 1] = c[1] .. ": error"
    end
  end
  return table.concat(out, "\n") .. "\n"
end
