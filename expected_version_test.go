package pmd_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestParseExpectedVersion: the spellings of an expected version in the HTTP API's query
// string and on pmd's command line, String's included, and what is refused.
func TestParseExpectedVersion(t *testing.T) {
	tests := []struct {
		in   string
		want pmd.ExpectedVersion
		ok   bool
	}{
		{"any", pmd.Any, true},
		{"no_stream", pmd.NoStream, true},
		{"-1", pmd.NoStream, true},
		{"stream_exists", pmd.StreamExists, true},
		{"0", pmd.AtVersion(0), true},
		{"42", pmd.AtVersion(42), true},
		{"18446744073709551615", pmd.AtVersion(1<<64 - 1), true},
		{"", pmd.Any, false},
		{"Any", pmd.Any, false},
		{" 1", pmd.Any, false},
		{"-2", pmd.Any, false},
		{"+1", pmd.Any, false},
		{"1.0", pmd.Any, false},
		{"1e3", pmd.Any, false},
		{"0x10", pmd.Any, false},
		{"18446744073709551616", pmd.Any, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := pmd.ParseExpectedVersion(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("ParseExpectedVersion(%q) = %v, %v, want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			if ok && tt.in != "-1" && got.String() != tt.in {
				t.Errorf("String() = %q, want %q back", got, tt.in)
			}
		})
	}
}

// TestExpectedVersionJSON: an expected version is written in JSON as the HTTP API's
// bodies take it, a name as a string and a version as an integer, and read back from
// that and from -1; a version given as a string, a fraction or a number below -1 is
// refused with an *InvalidArgumentError naming expected_version, and null leaves the
// value as it was.
func TestExpectedVersionJSON(t *testing.T) {
	for _, e := range []pmd.ExpectedVersion{pmd.Any, pmd.NoStream, pmd.StreamExists, pmd.AtVersion(0), pmd.AtVersion(1<<64 - 1)} {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		want := e.String()
		if _, err := fmt.Sscan(want, new(uint64)); err != nil {
			want = `"` + want + `"`
		}
		if string(b) != want {
			t.Errorf("%v written %s, want %s", e, b, want)
		}
		var back pmd.ExpectedVersion
		if err := json.Unmarshal(b, &back); err != nil || back != e {
			t.Errorf("%s read %v, %v, want %v", b, back, err, e)
		}
	}
	tests := []struct {
		in   string
		want pmd.ExpectedVersion
		ok   bool
	}{
		{`-1`, pmd.NoStream, true},
		{`7`, pmd.AtVersion(7), true},
		{`"no_stream"`, pmd.NoStream, true},
		{`null`, pmd.AtVersion(3), true}, // left as it was
		{`"7"`, pmd.AtVersion(3), false},
		{`"-1"`, pmd.AtVersion(3), false},
		{`"soon"`, pmd.AtVersion(3), false},
		{`{}`, pmd.AtVersion(3), false}, // what json.Marshal wrote before the methods
		{`-2`, pmd.AtVersion(3), false},
		{`1.0`, pmd.AtVersion(3), false},
		{`1e2`, pmd.AtVersion(3), false},
		{`true`, pmd.AtVersion(3), false},
		{`[]`, pmd.AtVersion(3), false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := pmd.AtVersion(3)
			err := json.Unmarshal([]byte(tt.in), &got)
			if got != tt.want || (err == nil) != tt.ok {
				t.Fatalf("%s read %v, %v, want %v (ok %v)", tt.in, got, err, tt.want, tt.ok)
			}
			var ia *pmd.InvalidArgumentError
			if err != nil && (!errors.As(err, &ia) || ia.Arg != "expected_version") {
				t.Errorf("error %#v, want an *InvalidArgumentError naming expected_version", err)
			}
		})
	}
}

func ExampleParseExpectedVersion() {
	for _, s := range []string{"no_stream", "-1", "12", "soon"} {
		e, ok := pmd.ParseExpectedVersion(s)
		fmt.Println(s, "→", e, ok)
	}
	b, _ := json.Marshal(map[string]pmd.ExpectedVersion{"no_stream": pmd.NoStream, "at_12": pmd.AtVersion(12)})
	fmt.Println(string(b))
	// Output:
	// no_stream → no_stream true
	// -1 → no_stream true
	// 12 → 12 true
	// soon → any false
	// {"at_12":12,"no_stream":"no_stream"}
}
