package voice

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// SlotValues flattens a JSON object of parameters (Dialogflow's) into slots:
// strings as they are, numbers as written, booleans as "true"/"false", lists
// joined with ", ", objects as compact JSON. Nulls and empty strings (a
// parameter not filled) are left out.
func SlotValues(params map[string]json.RawMessage) map[string]string {
	out := make(map[string]string, len(params))
	for name, raw := range params {
		if v, ok := SlotString(raw); ok {
			out[name] = v
		}
	}
	return out
}

// SlotString is one parameter value as a slot string; ok is false for null,
// an empty string or an empty list.
func SlotString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case 'n':
		return "", false
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil || s == "" {
			return "", false
		}
		return s, true
	case '[':
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return "", false
		}
		parts := make([]string, 0, len(items))
		for _, it := range items {
			if s, ok := SlotString(it); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ", "), len(parts) > 0
	case '{':
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || len(obj) == 0 {
			return "", false
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b bytes.Buffer
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			if err := json.Compact(&b, obj[k]); err != nil {
				return "", false
			}
		}
		b.WriteByte('}')
		return b.String(), true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	switch string(raw) {
	case "true", "false":
		return string(raw), true
	}
	return "", false
}
