package voice

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestSlotValues(t *testing.T) {
	var params map[string]json.RawMessage
	if err := json.Unmarshal([]byte(`{"s":"large","empty":"","n":2,"f":1.5e3,"b":true,"null":null,
		"list":["a",2,""],"none":[],"obj":{"currency":"EUR","amount":12.5}}`), &params); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"s": "large", "n": "2", "f": "1.5e3", "b": "true", "list": "a, 2",
		"obj": `{"amount":12.5,"currency":"EUR"}`}
	if got := SlotValues(params); !reflect.DeepEqual(got, want) {
		t.Errorf("SlotValues = %v, want %v", got, want)
	}
}
