package nlu

import (
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// slotExtractor finds slot values in text. It is built from the slot
// definitions plus the values marked up in examples, and is read-only.
type slotExtractor struct {
	def   Data // Slots only: what the model serializes
	names []string
	lists map[string]*phraseList
	regex map[string]*regexp.Regexp
	built map[string]string
}

// phraseList maps normalized phrases (words joined by one space) to their
// canonical values.
type phraseList struct {
	phrases map[string]string
	maxLen  int // in words
}

// newSlotExtractor merges the values marked up in d's examples into its slot
// definitions and compiles them. It returns nil when d has no slots.
func newSlotExtractor(d Data) *slotExtractor {
	def := make(map[string]Slot, len(d.Slots))
	for name, s := range d.Slots {
		c := Slot{Regex: s.Regex, Builtin: s.Builtin}
		if len(s.Values) > 0 {
			c.Values = make(map[string][]string, len(s.Values))
			for v, syn := range s.Values {
				c.Values[v] = slices.Clone(syn)
			}
		}
		def[name] = c
	}
	for _, name := range d.intentNames() {
		for _, ex := range d.Intents[name] {
			e := ParseExample(ex)
			for _, sp := range e.Spans {
				s := def[sp.Slot]
				if s.Regex != "" || s.Builtin != "" {
					continue
				}
				if s.Values == nil {
					s.Values = make(map[string][]string)
				}
				text := e.Text[sp.Start:sp.End]
				syn := s.Values[sp.Value]
				if !strings.EqualFold(text, sp.Value) {
					syn = append(syn, text)
				}
				s.Values[sp.Value] = syn
				def[sp.Slot] = s
			}
		}
	}
	if len(def) == 0 {
		return nil
	}
	for name, s := range def {
		for v, syn := range s.Values {
			slices.Sort(syn)
			s.Values[v] = slices.Compact(syn)
		}
		def[name] = s
	}
	x := &slotExtractor{def: Data{Slots: def}, lists: map[string]*phraseList{},
		regex: map[string]*regexp.Regexp{}, built: map[string]string{}}
	sc := new(scratch)
	for name, s := range def {
		x.names = append(x.names, name)
		switch {
		case s.Regex != "":
			if re, err := regexp.Compile(s.Regex); err == nil {
				x.regex[name] = re
			}
		case s.Builtin != "":
			x.built[name] = s.Builtin
		default:
			l := &phraseList{phrases: make(map[string]string)}
			values := make([]string, 0, len(s.Values))
			for v := range s.Values {
				values = append(values, v)
			}
			sort.Strings(values)
			for _, v := range values {
				for _, p := range append([]string{v}, s.Values[v]...) {
					key, n := phraseKey(sc, p)
					if n == 0 {
						continue
					}
					if _, taken := l.phrases[key]; !taken {
						l.phrases[key] = v
					}
					l.maxLen = max(l.maxLen, n)
				}
			}
			x.lists[name] = l
		}
	}
	sort.Strings(x.names)
	return x
}

// phraseKey normalizes a phrase like the classifier's tokenizer does.
func phraseKey(s *scratch, text string) (string, int) {
	s.normalize(text)
	return string(s.runes), len(s.toks)
}

// size estimates the extractor's memory.
func (x *slotExtractor) size() int {
	if x == nil {
		return 0
	}
	n := 0
	for _, l := range x.lists {
		for k, v := range l.phrases {
			n += len(k) + len(v) + 48
		}
	}
	return n
}

// extract returns the value of every slot found in text, or nil.
func (x *slotExtractor) extract(text string, now time.Time) map[string]string {
	if x == nil {
		return nil
	}
	var out map[string]string
	set := func(name, v string) {
		if out == nil {
			out = make(map[string]string)
		}
		out[name] = v
	}
	var words []string
	var lower, numbers string
	for _, name := range x.names {
		if l := x.lists[name]; l != nil {
			if words == nil {
				s := new(scratch)
				s.normalize(text)
				words = make([]string, len(s.toks))
				for i, t := range s.toks {
					words[i] = string(s.runes[t[0]:t[1]])
				}
			}
			if v, ok := l.find(words); ok {
				set(name, v)
			}
			continue
		}
		if re := x.regex[name]; re != nil {
			if m := re.FindStringSubmatch(text); m != nil {
				v := m[0]
				if len(m) > 1 && m[1] != "" {
					v = m[1]
				}
				set(name, v)
			}
			continue
		}
		if lower == "" {
			lower = strings.ToLower(text)
		}
		var v string
		var ok bool
		switch x.built[name] {
		case BuiltinNumber:
			if numbers == "" {
				numbers = blankDatesAndTimes(lower)
			}
			v, ok = findNumber(numbers)
		case BuiltinDate:
			v, ok = findDate(lower, now)
		case BuiltinTime:
			v, ok = findTime(lower)
		}
		if ok {
			set(name, v)
		}
	}
	return out
}

// find returns the canonical value of the leftmost, longest phrase in words.
func (l *phraseList) find(words []string) (string, bool) {
	for i := range words {
		for n := min(l.maxLen, len(words)-i); n >= 1; n-- {
			if v, ok := l.phrases[strings.Join(words[i:i+n], " ")]; ok {
				return v, true
			}
		}
	}
	return "", false
}

// Numbers: digits (with thousands separators and decimals, not part of a
// time or date) or English number words.
var (
	digitNumber = regexp.MustCompile(`(?:^|[^\w.:/-])(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?)(?:$|[^\w:/]|\.(?:\D|$))`)
	numberWords = map[string]float64{
		"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
		"eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
		"fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
		"nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
		"seventy": 70, "eighty": 80, "ninety": 90, "dozen": 12,
	}
	numberScales = map[string]float64{"hundred": 100, "thousand": 1000, "million": 1e6, "billion": 1e9}
	// determiners before "one" make it a pronoun ("a big one"), not a number.
	determiners = map[string]bool{"a": true, "an": true, "the": true, "this": true, "that": true,
		"which": true, "each": true, "every": true, "any": true, "no": true, "other": true, "another": true}
	wordRE = regexp.MustCompile(`[a-z]+|\d+`)
)

// blankDatesAndTimes replaces dates and times with spaces, so that the
// numbers in them are not taken for numbers of their own.
func blankDatesAndTimes(lower string) string {
	b := []byte(lower)
	for _, re := range []*regexp.Regexp{isoDate, slashDate, monthDay, dayMonth, relDays, clockTime} {
		for _, m := range re.FindAllStringIndex(lower, -1) {
			for i := m[0]; i < m[1]; i++ {
				b[i] = ' '
			}
		}
	}
	return string(b)
}

func findNumber(lower string) (string, bool) {
	digits := digitNumber.FindStringSubmatchIndex(lower)
	words, wordsAt := wordNumber(lower)
	if digits == nil && wordsAt < 0 {
		return "", false
	}
	if digits == nil || (wordsAt >= 0 && wordsAt < digits[2]) {
		return strconv.FormatFloat(words, 'f', -1, 64), true
	}
	s := strings.ReplaceAll(lower[digits[2]:digits[3]], ",", "")
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return "", false
	}
	return strconv.FormatFloat(f, 'f', -1, 64), true
}

// wordNumber parses the first run of number words ("twenty five", "two
// hundred and ten", "a dozen") and returns its value and byte offset, or -1.
func wordNumber(lower string) (float64, int) {
	locs := wordRE.FindAllStringIndex(lower, -1)
	for i := 0; i < len(locs); i++ {
		w := lower[locs[i][0]:locs[i][1]]
		if _, ok := numberWords[w]; !ok {
			continue
		}
		if w == "one" && pronoun(lower, locs, i) {
			continue
		}
		total, current := 0.0, 0.0
		j := i
		for ; j < len(locs); j++ {
			w := lower[locs[j][0]:locs[j][1]]
			if v, ok := numberWords[w]; ok {
				current += v
			} else if s, ok := numberScales[w]; ok {
				if current == 0 {
					current = 1
				}
				current *= s
				if s >= 1000 {
					total += current
					current = 0
				}
			} else if w == "and" && j+1 < len(locs) {
				if _, ok := numberWords[lower[locs[j+1][0]:locs[j+1][1]]]; !ok {
					break
				}
			} else {
				break
			}
		}
		return total + current, locs[i][0]
	}
	return 0, -1
}

func isNumberWord(w string) bool {
	_, a := numberWords[w]
	_, b := numberScales[w]
	return a || b
}

// pronoun reports whether the "one" at i stands for a thing ("a big one",
// "the other one") rather than a count: a determiner one or two words
// before it, and no number word after it.
func pronoun(lower string, locs [][]int, i int) bool {
	word := func(j int) string { return lower[locs[j][0]:locs[j][1]] }
	if i+1 < len(locs) && isNumberWord(word(i+1)) {
		return false
	}
	return i >= 1 && determiners[word(i-1)] || i >= 2 && determiners[word(i-2)]
}

// Dates.
var (
	isoDate   = regexp.MustCompile(`\b(\d{4})-(\d{1,2})-(\d{1,2})\b`)
	slashDate = regexp.MustCompile(`\b(\d{1,2})/(\d{1,2})(?:/(\d{2}|\d{4}))?\b`)
	monthDay  = regexp.MustCompile(`\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(\d{4})\b)?`)
	dayMonth  = regexp.MustCompile(`\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b(?:,?\s+(\d{4})\b)?`)
	relDays   = regexp.MustCompile(`\bin\s+(\d+|a|one|two|three|four|five|six|seven|eight|nine|ten)\s+(day|week)s?\b`)
	weekday   = regexp.MustCompile(`\b(next\s+)?(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b`)
	relWord   = regexp.MustCompile(`\b(today|tonight|tomorrow|yesterday|day after tomorrow)\b`)
	months    = map[string]time.Month{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7,
		"aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12}
	weekdays = map[string]time.Weekday{"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3,
		"thursday": 4, "friday": 5, "saturday": 6}
)

// findDate finds the first date expression and returns it as YYYY-MM-DD.
// Dates without a year are the next such date from now on; "5/1" is May 1st.
func findDate(lower string, now time.Time) (string, bool) {
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	best, bestAt := time.Time{}, -1
	try := func(at int, d time.Time) {
		if at >= 0 && (bestAt < 0 || at < bestAt) && !d.IsZero() {
			best, bestAt = d, at
		}
	}
	date := func(y int, m time.Month, d int) time.Time {
		if m < 1 || m > 12 || d < 1 || d > 31 {
			return time.Time{}
		}
		t := time.Date(y, m, d, 0, 0, 0, 0, now.Location())
		if t.Day() != d {
			return time.Time{}
		}
		return t
	}
	upcoming := func(m time.Month, d int, year string) time.Time {
		if year != "" {
			y, _ := strconv.Atoi(year)
			if y < 100 {
				y += 2000
			}
			return date(y, m, d)
		}
		t := date(today.Year(), m, d)
		if !t.IsZero() && t.Before(today) {
			t = date(today.Year()+1, m, d)
		}
		return t
	}
	if m := isoDate.FindStringSubmatchIndex(lower); m != nil {
		y, _ := strconv.Atoi(lower[m[2]:m[3]])
		mo, _ := strconv.Atoi(lower[m[4]:m[5]])
		d, _ := strconv.Atoi(lower[m[6]:m[7]])
		try(m[0], date(y, time.Month(mo), d))
	}
	if m := slashDate.FindStringSubmatchIndex(lower); m != nil {
		mo, _ := strconv.Atoi(lower[m[2]:m[3]])
		d, _ := strconv.Atoi(lower[m[4]:m[5]])
		year := ""
		if m[6] >= 0 {
			year = lower[m[6]:m[7]]
		}
		if mo >= 1 && mo <= 12 {
			try(m[0], upcoming(time.Month(mo), d, year))
		}
	}
	if m := monthDay.FindStringSubmatchIndex(lower); m != nil {
		d, _ := strconv.Atoi(lower[m[4]:m[5]])
		year := ""
		if m[6] >= 0 {
			year = lower[m[6]:m[7]]
		}
		try(m[0], upcoming(months[lower[m[2]:m[3]]], d, year))
	}
	if m := dayMonth.FindStringSubmatchIndex(lower); m != nil {
		d, _ := strconv.Atoi(lower[m[2]:m[3]])
		year := ""
		if m[6] >= 0 {
			year = lower[m[6]:m[7]]
		}
		try(m[0], upcoming(months[lower[m[4]:m[5]]], d, year))
	}
	if m := relWord.FindStringSubmatchIndex(lower); m != nil {
		days := map[string]int{"today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1, "day after tomorrow": 2}
		try(m[0], today.AddDate(0, 0, days[lower[m[2]:m[3]]]))
	}
	if m := relDays.FindStringSubmatchIndex(lower); m != nil {
		n, err := strconv.Atoi(lower[m[2]:m[3]])
		if err != nil {
			n = int(numberWords[lower[m[2]:m[3]]])
			if lower[m[2]:m[3]] == "a" {
				n = 1
			}
		}
		if lower[m[4]:m[5]] == "week" {
			n *= 7
		}
		try(m[0], today.AddDate(0, 0, n))
	}
	if m := weekday.FindStringSubmatchIndex(lower); m != nil {
		ahead := (int(weekdays[lower[m[4]:m[5]]]) - int(today.Weekday()) + 7) % 7
		if m[2] >= 0 && ahead == 0 {
			ahead = 7
		}
		try(m[0], today.AddDate(0, 0, ahead))
	}
	if bestAt < 0 {
		return "", false
	}
	return best.Format("2006-01-02"), true
}

// Times.
var (
	clockTime = regexp.MustCompile(`\b(\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?)(?:\W|$)|\b(\d{1,2}):(\d{2})\b`)
	namedTime = regexp.MustCompile(`\b(noon|midday|midnight)\b`)
)

// findTime finds the first time of day and returns it as HH:MM (24-hour).
func findTime(lower string) (string, bool) {
	c := clockTime.FindStringSubmatchIndex(lower)
	n := namedTime.FindStringSubmatchIndex(lower)
	if n != nil && (c == nil || n[0] < c[0]) {
		if lower[n[2]:n[3]] == "midnight" {
			return "00:00", true
		}
		return "12:00", true
	}
	if c == nil {
		return "", false
	}
	var h, m int
	if c[2] >= 0 {
		h, _ = strconv.Atoi(lower[c[2]:c[3]])
		if c[4] >= 0 {
			m, _ = strconv.Atoi(lower[c[4]:c[5]])
		}
		if h < 1 || h > 12 {
			return "", false
		}
		pm := lower[c[6]] == 'p'
		switch {
		case pm && h != 12:
			h += 12
		case !pm && h == 12:
			h = 0
		}
	} else {
		h, _ = strconv.Atoi(lower[c[8]:c[9]])
		m, _ = strconv.Atoi(lower[c[10]:c[11]])
	}
	if h > 23 || m > 59 {
		return "", false
	}
	return strconv.Itoa(h/10) + strconv.Itoa(h%10) + ":" + strconv.Itoa(m/10) + strconv.Itoa(m%10), true
}
