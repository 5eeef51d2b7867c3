package store

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add([]byte(`{"format":"parley-store-snapshot","version":1,"saved_at":"2026-01-01T00:00:00Z","keys":[
{"key":"k","type":"string","value":"v","expire_at_ms":1767225600000}
,{"key":{"base64":"/w=="},"type":"hash","fields":[{"field":"f","value":"v","expire_at_ms":5}]}
,{"key":"l","type":"list","items":["a","b"]}
,{"key":"z","type":"zset","members":[{"member":"m","score":"-Inf"}]}
,{"key":"s","type":"stream","entries":[{"id":"1-1","values":["a","b"]}],"groups":[{"name":"g","last_delivered_id":"1-1","oldest_pending_id":"1-1"}]}
]}`))
	f.Add([]byte(`{"format":"parley-store-snapshot","version":1,"keys":[]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := decodeSnapshot(bytes.NewReader(data))
		if err != nil {
			return
		}
		// What decodes must encode and decode to the same.
		var buf bytes.Buffer
		if err := encodeSnapshot(&buf, snap); err != nil {
			t.Fatalf("encode: %v", err)
		}
		again, err := decodeSnapshot(&buf)
		if err != nil {
			t.Fatalf("decode of the re-encoded snapshot: %v\n%s", err, buf.String())
		}
		if !reflect.DeepEqual(again.Keys, snap.Keys) && !(len(again.Keys) == 0 && len(snap.Keys) == 0) {
			t.Fatalf("round trip changed the keys:\n%#v\n%#v", snap.Keys, again.Keys)
		}
	})
}

// FuzzParseTarget checks that no URL, however broken, makes parseTarget
// panic or print the password.
func FuzzParseTarget(f *testing.F) {
	for _, s := range [][3]string{
		{"", "pw", "10.0.0.5"}, {"bob", "pa%40ss", "h:6380/2?client_name=x"}, {"", "pw", "a:7000,redis://b:7001, c"},
		{"u", "p", "a?cluster=true"}, {"u", "p", "[::1"}, {"u", "a,b", "h"}, {"u", "p@q", "a,redis://x:y@b:bad"},
		{"u:v", "p", "h:bad"}, {"", "p/q", "h"}, {"0", ":#", "0"}, {"0", "\"#", "0"}, {"@0?", "&", "0"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	const marker = "S3KR1T"
	f.Fuzz(func(t *testing.T, user, password, rest string) {
		if strings.Contains(user+rest, marker) {
			t.Skip()
		}
		for _, scheme := range []string{"redis://", "rediss://", "http://", ""} {
			raw := scheme + user + ":" + marker + password + "@" + rest
			got, err := parseTarget(raw)
			if err != nil {
				if strings.Contains(err.Error(), marker) {
					t.Fatalf("parseTarget(%q): error %q shows the password", raw, err)
				}
				continue
			}
			if strings.Contains(got.describe, marker) || strings.Contains(got.where, marker) {
				t.Fatalf("parseTarget(%q): describe %q, where %q show the password", raw, got.describe, got.where)
			}
		}
	})
}
