package sessions

import (
	stdjson "encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

// randomValue is a value of a handler's session table as it reaches the
// store: strings (any bytes, as Lua strings may hold), numbers, booleans,
// and nested tables and lists.
func randomValue(r *rand.Rand, depth int) any {
	switch k := r.IntN(7); {
	case k == 0 && depth < 4:
		m := make(map[string]any)
		for range r.IntN(4) {
			m[randomString(r)] = randomValue(r, depth+1)
		}
		return m
	case k == 1 && depth < 4:
		l := make([]any, r.IntN(4))
		for i := range l {
			l[i] = randomValue(r, depth+1)
		}
		return l
	case k == 2:
		return r.IntN(2) == 0
	case k == 3:
		return math.Trunc(r.NormFloat64() * 1e6)
	case k == 4:
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
	default:
		return randomString(r)
	}
}

func randomString(r *rand.Rand) string {
	pieces := []string{"a", "é", "\u2028", "<script>", "&", "\"", "\\", "\n", "\x00", "\xff", "😀", "\xed\xa0\x80", " "}
	var b strings.Builder
	for range r.IntN(6) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

// TestCodecMatchesEncodingJSON: the store encodes and decodes sessions with
// a faster codec than encoding/json; what it writes, encoding/json reads as
// the same state, and what encoding/json wrote (sessions stored before the
// change) it reads as encoding/json does.
func TestCodecMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		data := make(map[string]any)
		for range r.IntN(6) {
			data[randomString(r)] = randomValue(r, 0)
		}
		st := State{Data: data, Expect: randomString(r), Turns: r.IntN(1000),
			Started: time.Unix(r.Int64N(2e9), r.Int64N(1e9)).UTC(), Updated: time.Unix(r.Int64N(2e9), 0).UTC()}
		if r.IntN(2) == 0 {
			st.Versions = map[string]int{randomString(r): r.IntN(9)}
			st.Choices = []string{randomString(r), randomString(r)}
		}
		ours, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		std, err := stdjson.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		decode := func(name string, unmarshal func([]byte, any) error, raw []byte) State {
			var out State
			if err := unmarshal(raw, &out); err != nil {
				t.Fatalf("case %d: %s cannot read %s: %v", i, name, raw, err)
			}
			return out
		}
		want := decode("encoding/json", stdjson.Unmarshal, std)
		for name, got := range map[string]State{
			"encoding/json reading ours": decode("encoding/json", stdjson.Unmarshal, ours),
			"ours reading encoding/json": decode("the store's codec", json.Unmarshal, std),
			"ours reading ours":          decode("the store's codec", json.Unmarshal, ours),
		} {
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("case %d: %s: %s\ngot  %v\nwant %v", i, name, fmt.Sprint(string(ours)), got, want)
			}
		}
	}
}
