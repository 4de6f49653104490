package engine

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDispatchOneFilePerAPI holds the engine to one file per Kafka API:
// every registered key has its file api_<name>.go (kmsg.NameForKey in lower
// case), which registers exactly that key, by its kmsg constant, and no
// api_*.go file registers anything else.
func TestDispatchOneFilePerAPI(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "api_") && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			files[n] = true
		}
	}
	fileFor := func(key int16) string {
		return "api_" + strings.ToLower(kmsg.NameForKey(key)) + ".go"
	}
	owner := map[string]int16{}
	for key := range apis {
		f := fileFor(key)
		if !files[f] {
			t.Errorf("%s (key %d) is registered but %s does not exist", kmsg.NameForKey(key), key, f)
			continue
		}
		owner[f] = key
	}
	// The first argument of every registration outside comments, whatever
	// it is.
	reg := regexp.MustCompile(`(?m)^[^/\n]*\breg(?:Key|Raw)\(\s*([^,]*),`)
	for f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ms := reg.FindAllSubmatch(src, -1)
		key, ok := owner[f]
		if !ok {
			t.Errorf("%s is named after no registered API, and has %d registrations", f, len(ms))
			continue
		}
		want := "kmsg." + kmsg.NameForKey(key) + ".Int16()"
		if len(ms) != 1 {
			t.Errorf("%s has %d registrations, want one: one file per API", f, len(ms))
		}
		for _, m := range ms {
			if got := strings.TrimSpace(string(m[1])); got != want {
				t.Errorf("%s registers %s: it may register only its own API, by its kmsg constant %s", f, got, want)
			}
		}
	}
}
