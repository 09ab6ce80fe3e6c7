package claims

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestAudience(t *testing.T) {
	for in, want := range map[string][]string{`"a"`: {"a"}, `["a","b"]`: {"a", "b"}, `[]`: {}} {
		var a Audience
		if err := json.Unmarshal([]byte(in), &a); err != nil || !slices.Equal(a, want) {
			t.Errorf("%s: %v, %v", in, a, err)
		}
	}
	for _, in := range []string{`1`, `{"a":1}`, `["a",2]`, `null1`} {
		var a Audience
		if err := json.Unmarshal([]byte(in), &a); err == nil {
			t.Errorf("%s accepted: %v", in, a)
		}
	}
}
