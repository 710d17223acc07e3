package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

var flatObjectSeeds = []string{
	``, `{}`, ` { } `, `[]`, `"x"`, `1`, `null`, `{`, `{"sku": "A", "name": "B"}`, "\t{\"sku\":\"A\",\n\"name\" : \"B\"}\r\n",
	`{"sku":"wrk-1-2","name":"Bench product 2","price":"9.50"}`,
	`{"sku": "A", "name": "B", "price": 9.5, "category_id": 3, "description": null, "ok": true, "no": false}`,
	`{"sku": "A", "sku": "B"}`, `{"s\u006bu": "A"}`, `{"s\"ku": "A"}`, `{"sku": "A\"B\\", "name": "\u00e9\n"}`,
	`{"a": {"b": [1, 2, {"c": "}]"}]}, "d": [], "e": {}, "f": [[]]}`, `{"sku": "A"} trailing`, `{"sku": "A"}}`,
	`{"sku": "é 日本", "name": "\ud83d\ude00"}`, `{"":1}`, `{"n": -1.5e-3, "m": 0}`, `{"a":1,}`, `{"a" 1}`,
	"{\"sku\": \"tab\there\"}", `{"sku": "A",   "name"  :   "B"   }`,
	`{` + strings.Repeat(`"k": 1, `, maxFlatMembers) + `"last": 2}`,
}

// flatObject's members are the map encoding/json makes of the same body, and jsonInput reads
// their strings as encoding/json does.
func FuzzFlatObject(f *testing.F) {
	for _, s := range flatObjectSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFlatObject(t, body)
	})
}

func TestFlatObject(t *testing.T) {
	t.Parallel()
	for _, s := range flatObjectSeeds {
		checkFlatObject(t, []byte(s))
	}
	// The bench's and a typical client's body take the fast path.
	for _, s := range []string{`{"sku":"wrk-1-2","name":"Bench product 2","price":"9.50"}`, `{}`,
		`{"sku": "A", "name": "B", "price": 9.5, "category_id": 3, "description": null}`} {
		if _, ok := flatObject([]byte(s)); !ok {
			t.Errorf("%s: not split", s)
		}
	}
	// Whatever it does not handle alike goes to encoding/json.
	for _, s := range []string{``, `[]`, `{"s\u006bu": "A"}`, `{"sku": "A"} trailing`, `{"a":1,}`,
		`{` + strings.Repeat(`"k": 1, `, maxFlatMembers) + `"last": 2}`} {
		if _, ok := flatObject([]byte(s)); ok {
			t.Errorf("%s: split", s)
		}
	}
}

func checkFlatObject(t *testing.T, body []byte) {
	t.Helper()
	ms, ok := flatObject(body)
	var want map[string]json.RawMessage
	err := json.Unmarshal(body, &want)
	if !ok {
		return
	}
	if err != nil || want == nil {
		t.Fatalf("%q: split, but encoding/json: %v", body, err)
	}
	keys := map[string]bool{}
	for _, m := range ms {
		keys[string(m.key)] = true
	}
	if len(keys) != len(want) {
		t.Fatalf("%q: keys %v, encoding/json %v", body, keys, want)
	}
	for k, v := range want {
		raw, ok := ms.get(k)
		if !ok || !bytes.Equal(raw, v) {
			t.Fatalf("%q: %q is %q, encoding/json %q", body, k, raw, v)
		}
		in, err := jsonInput(raw)
		if err != nil {
			t.Fatalf("%q: %q: %v", body, k, err)
		}
		var s string
		if raw[0] == '"' && json.Unmarshal(raw, &s) == nil && (in.typ != 's' || in.s != s) {
			t.Fatalf("%q: %q reads as %q, encoding/json %q", body, k, in.s, s)
		}
	}
}
