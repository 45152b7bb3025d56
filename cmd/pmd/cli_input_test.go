package main

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestClientInputRefusedBeforeDialling: a client command whose arguments break the
// store's rules is a usage error (exit 2) naming the argument, found before anything is
// sent. The daemon address is one nobody listens at: a command that dialled would exit 3.
func TestClientInputRefusedBeforeDialling(t *testing.T) {
	long := strings.Repeat("x", 250)
	const id = "0190c1d2-0000-7000-8000-000000000001"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"append", "", "T", "{}"}, "STREAM must not be empty"},
		{[]string{"append", "a\x01b", "T", "{}"}, `STREAM "a\x01b" contains the control character U+0001`},
		{[]string{"append", "s", "", "{}"}, "TYPE must not be empty"},
		{[]string{"append", strings.Repeat("s", 257), "T", "{}"}, "STREAM is 257 bytes long, the limit is 256"},
		{[]string{"link", "", id}, "STREAM must not be empty"},
		{[]string{"append", "$all", "T", "{}"}, `STREAM "$all" starts with $, which is reserved for the store's own streams`},
		{[]string{"link", "$ce-Order", id}, `STREAM "$ce-Order" starts with $`},
		{[]string{"delete", "$all"}, `STREAM "$all" starts with $`},
		{[]string{"category", "Order$42"}, `NAME "Order$42" holds a $: a category is the part of a stream name before its first $ (here "Order")`},
		{[]string{"read", ""}, "STREAM must not be empty"},
		{[]string{"category", ""}, "NAME must not be empty"},
		{[]string{"delete", ""}, "STREAM must not be empty"},
		{[]string{"tail", "--stream", ""}, "--stream must not be empty"},
		{[]string{"tail", "--types", "A,,B"}, `--types "A,,B": type 2 of 3 must not be empty`},
		{[]string{"tail", "--types", ","}, `--types ",": type 1 of 2 must not be empty`},
		{[]string{"process", "CateringMatch", ""}, "ID must not be empty"},
		{[]string{"process", "", "42"}, "NAME must not be empty"},
		{[]string{"process", "CateringMatch", long}, `cannot name a process of CateringMatch: it makes the stream name 264 bytes long, the limit is 256`},
		// The rule of pm for a new process: room for its deliveries stream, which a
		// process of an earlier version's longer id has none of, so no parked command.
		{[]string{"retry", "CateringMatch", strings.Repeat("x", 240), id}, `cannot name a process of CateringMatch: it makes the stream name CateringMatch.deliveries$<id> 265 bytes long, the limit is 256`},
		{[]string{"parked", ""}, "NAME must not be empty"},
		{[]string{"parked", "Shipping", "--limit", "-1"}, "--limit must be ≥ 1, got -1"},
		{[]string{"parked", "Shipping", "--limit", "0"}, "--limit must be ≥ 1, got 0"},
		{[]string{"retry", "Shipping", "", id}, "ID must not be empty"},
		{[]string{"retry", "Shipping", "42", "nope"}, `COMMAND "nope" is not a UUID`},
		{[]string{"skip", "Shipping", "42", "nope"}, `COMMAND "nope" is not a UUID`},
		{[]string{"skip", "Shipping", long, id}, "it makes the stream name Shipping.deliveries$<id> 270 bytes long"},
		{[]string{"subscriptions", ""}, "NAME must not be empty"},
		{[]string{"subscriptions", "retry", "billing", "nope"}, `EVENT "nope" is not a UUID`},
		{[]string{"subscriptions", "skip", "", id}, "NAME must not be empty"},
		{[]string{"append", "s", "T", "{}", "--expected", ""}, `--expected must be any, no_stream, stream_exists or an integer ≥ -1, got ""`},
		{[]string{"link", "s", id, "--expected="}, `--expected must be any, no_stream, stream_exists or an integer ≥ -1, got ""`},
		{[]string{"delete", "s", "--expected", ""}, `--expected must be any, no_stream, stream_exists or an integer ≥ -1, got ""`},
		{[]string{"read", "s", "--limit", "abc"}, `--limit: "abc" is not a whole number`},
		{[]string{"streams", "--limit", "1.5"}, `--limit: "1.5" is not a whole number`},
		{[]string{"read", "s", "--limit", "99999999999999999999"}, `--limit: "99999999999999999999" is out of range`},
		{[]string{"read", "s", "--backward=maybe"}, `--backward: "maybe" is not true or false`},
		{[]string{"append", "s", "T", `{"a":1,"a":2}`}, `the event data "{\"a\":1,\"a\":2}" gives the key "a" twice in one object`},
		{[]string{"append", "s", "T", `{"a":[{"b":1},{"c":{"d":1,"d":2}}]}`}, `gives the key "d" twice in one object`},
		{[]string{"append", "s", "T", "{}", "--metadata", `{"user":"ann","user":"bob"}`}, `--metadata "{\"user\":\"ann\",\"user\":\"bob\"}" gives the key "user" twice in one object`},
		{[]string{"append", "s", "T", "{\"s\":\"\xff\"}"}, `the event data "{\"s\":\"\xff\"}" is not valid UTF-8`},
		{[]string{"append", "s", "T", `{"s":"\ud800"}`}, `the event data "{\"s\":\"\\ud800\"}" holds \ud800, half of a UTF-16 surrogate pair`},
		{[]string{"append", "s", "T", `{"s":"a\udc00"}`}, `holds \udc00, half of a UTF-16 surrogate pair`},
		{[]string{"cluster", "remove", ""}, "ID must not be empty"},
		{[]string{"cluster", "join", " ", "127.0.0.1:7001"}, "ID must not be empty"},
		{[]string{"cluster", "join", "n2", "127.0.0.1"}, `RAFT_ADDR "127.0.0.1" is not HOST:PORT`},
		{[]string{"help", "raed"}, `unknown command "raed"; did you mean read?`},
		{[]string{"completion"}, "want a shell: bash, zsh, fish or powershell"},
		{[]string{"completion", "tcsh"}, `want a shell: bash, zsh, fish or powershell, got "tcsh"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append([]string{"--addr", "127.0.0.1:1"}, tt.args...)
			code, out, errOut := runPMD(t, context.Background(), args...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s%s", code, exitUsage, tt.want, out, errOut)
			}
			if out != "" {
				t.Errorf("a refused command printed to stdout:\n%s", out)
			}
			if strings.Contains(errOut, "strconv") {
				t.Errorf("the message names a Go function: %s", errOut)
			}
		})
	}
}

// TestRefusedAppendChangesNothing: an append the command line refuses leaves a running
// daemon's store as it was.
func TestRefusedAppendChangesNothing(t *testing.T) {
	d := startInProcess(t, nil)
	ctx := context.Background()
	if _, err := d.store.Append(ctx, "s", pmd.Any, pmd.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	before := d.store.LastPosition()
	for _, args := range [][]string{
		{"append", "", "T", "{}"},
		{"append", "s", "", "{}"},
		{"append", "s", "T", "{}", "--expected", "x"},
		{"append", "s", "T", "{}", "--id", "x"},
	} {
		code, _, errOut := runPMD(t, ctx, append([]string{"--addr", d.addr}, args...)...)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d:\n%s", args, code, exitUsage, errOut)
		}
	}
	if got := d.store.LastPosition(); got != before {
		t.Fatalf("the log grew from %d to %d", before, got)
	}
}

// TestOfflineCommandsLeaveANonStoreAlone: verify, repair and scavenge given a directory
// that holds no store (a mistyped path) say so, exit 3, and write nothing there.
func TestOfflineCommandsLeaveANonStoreAlone(t *testing.T) {
	for _, args := range [][]string{
		{"verify"},
		{"repair"},
		{"repair", "--yes"},
		{"scavenge", "--rate", "0"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			before := snapshotDir(t, dir)
			code, out, errOut := runPMD(t, context.Background(), append(args, dir)...)
			if code != exitTrouble || !strings.Contains(errOut, dir) || !strings.Contains(errOut, "no ") {
				t.Errorf("exit %d, want %d naming %s:\n%s%s", code, exitTrouble, dir, out, errOut)
			}
			if after := snapshotDir(t, dir); !maps.Equal(before, after) {
				t.Errorf("the directory changed: %v, was %v", slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(before)))
			}
		})
	}
}

// TestScavengeSaysItUpgrades: pmd scavenge on a store of the previous format upgrades
// it as it opens, which is long work on a large store and cannot be undone: it says so.
func TestScavengeSaysItUpgrades(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.CopyFS(dir, os.DirFS("../../testdata/format1/data")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runPMD(t, context.Background(), "scavenge", "--rate", "0", dir)
	if code != exitOK {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"upgrading the data directory from format 1", "upgraded the data directory to format 5"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "scavenged the log") {
		t.Errorf("stderr repeats the summary:\n%s", errOut)
	}
}

// TestClientCommandsWithTheDaemonDown: every command that talks to a daemon fails at
// once when none listens at --addr, with exit 3 and a message naming the address; tail
// with --from too, rather than trying to reconnect for ever.
func TestClientCommandsWithTheDaemonDown(t *testing.T) {
	const id = "0190c1d2-0000-7000-8000-000000000001"
	for _, args := range [][]string{
		{"append", "s", "T", "{}"},
		{"link", "s", id},
		{"read", "s"},
		{"category", "Order"},
		{"streams"},
		{"delete", "s"},
		{"tail"},
		{"tail", "--from", "0"},
		{"tail", "--stream", "s", "--from", "0"},
		{"process"},
		{"process", "Shipping", "42"},
		// An id an earlier version may have stored: the daemon says whether it holds it.
		{"process", "Shipping", strings.Repeat("x", 240)},
		{"parked", "Shipping"},
		{"retry", "Shipping", "42", id},
		{"skip", "Shipping", "42", id},
		{"subscriptions"},
		{"subscriptions", "billing"},
		{"subscriptions", "retry", "billing", id},
		{"subscriptions", "skip", "billing", id},
		{"cluster", "status"},
		{"cluster", "join", "n2", "127.0.0.1:7082"},
		{"cluster", "remove", "n2"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			// A command that did not give up would run until this deadline, and exit 0.
			ctx := minuteContext(t)
			code, out, errOut := runPMD(t, ctx, append([]string{"--addr", "127.0.0.1:1"}, args...)...)
			if code != exitTrouble || !strings.Contains(errOut, "cannot reach pmd at http://127.0.0.1:1") {
				t.Fatalf("exit %d, want %d naming the address:\n%s%s", code, exitTrouble, out, errOut)
			}
		})
	}
}

// TestJSONOutputIsJSON: each command offering --json prints one JSON value a line, and
// nothing else on stdout, for a script to decode.
func TestJSONOutputIsJSON(t *testing.T) {
	d := startInProcess(t, cateringConfig(t, ""))
	ctx := context.Background()
	res, err := d.store.Append(ctx, "Customer$7", pmd.Any, pmd.EventData{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "42"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.procs.managers[0].m.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"append", "Order$1", "Placed", `{"n":12345678901234567890}`},
		{"append", "Order$2", "Placed", `{"a":{"a":1},"b":[{"a":1},{"a":1}],"c":{},"d":[],"e":"\ud83d\ude00","f":"\\ud800"}`},
		{"link", "Audit", res.IDs[0].String()},
		{"read", "Customer$7"},
		{"read", "$all", "--limit", "1"},
		{"category", "Customer"},
		{"streams"},
		{"process"},
		{"process", "CateringMatch", "42"},
		{"parked", "CateringMatch"},
		{"subscriptions"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runPMD(t, ctx, append(args, "--addr", d.addr, "--json")...)
			if code != exitOK {
				t.Fatalf("exit %d:\n%s%s", code, out, errOut)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			for _, l := range lines {
				if !json.Valid([]byte(l)) {
					t.Errorf("not a JSON line: %q", l)
				}
			}
		})
	}
}

// TestJSONListsAreObjects: every list a command prints with --json is an object whose
// key names the list, as the API answers it, never a bare array (nor null when empty).
func TestJSONListsAreObjects(t *testing.T) {
	d := startInProcess(t, parseConfig(t, cateringAndBillingYAML))
	tests := []struct {
		args []string
		key  string
		n    int
	}{
		{[]string{"streams"}, "streams", 0},
		{[]string{"category", "Order"}, "events", 0},
		{[]string{"read", "$all"}, "events", 0},
		{[]string{"process"}, "processes", 1},
		{[]string{"parked", "CateringMatch"}, "parked", 0},
		{[]string{"subscriptions"}, "subscriptions", 1},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runPMD(t, context.Background(), append(tt.args, "--addr", d.addr, "--json")...)
			if code != exitOK {
				t.Fatalf("exit %d:\n%s%s", code, out, errOut)
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal([]byte(out), &obj); err != nil {
				t.Fatalf("not a JSON object (%v): %s", err, out)
			}
			var list []json.RawMessage
			if err := json.Unmarshal(obj[tt.key], &list); err != nil || list == nil || len(list) != tt.n {
				t.Fatalf("%q is not a list of %d (%v): %s", tt.key, tt.n, err, out)
			}
		})
	}
}

// TestServeUsageErrorsTouchNothing: a serve command line that makes no sense exits 2,
// names what is wrong, and creates no data directory.
func TestServeUsageErrorsTouchNothing(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
		{[]string{"--log-format", "xml"}, `--log-format must be text or json, got "xml"`},
		{[]string{"--scavenge-every", "daily"}, `--scavenge-every "daily" is not a duration of zero or more`},
		{[]string{"--scavenge-every", "-1h"}, `--scavenge-every "-1h" is not a duration of zero or more`},
		{[]string{"--shutdown-grace", "soon"}, `--shutdown-grace "soon" is not a duration`},
		{[]string{"--cache", "-1"}, `--cache: "-1" is not a size`},
		{[]string{"--max-body", "1.5MiB"}, `--max-body: "1.5MiB" is not a size`},
		{[]string{"--no-sync=maybe"}, `invalid boolean value "maybe" for -no-sync`},
		// An --addr that names no address to listen on (exit 3 before, as a busy port).
		{[]string{"--addr", "bogus"}, `--addr "bogus" is not HOST:PORT`},
		{[]string{"--addr", "http://127.0.0.1:7070"}, `--addr "http://127.0.0.1:7070" is not HOST:PORT`},
		{[]string{"--addr", "127.0.0.1:99999"}, `--addr "127.0.0.1:99999": port 99999 is out of range`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			args := append([]string{"serve", "--data", data, "--addr", "127.0.0.1:0"}, tt.args...)
			code, out, errOut := runPMD(t, context.Background(), args...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s%s", code, exitUsage, tt.want, out, errOut)
			}
			if _, err := os.Stat(data); err == nil {
				t.Fatal("the data directory was created")
			}
		})
	}
}

// TestCheckConfigNamesTheFile: the first line of check-config's answer to a config file
// with problems says which file and how many problems, one a line after it.
func TestCheckConfigNamesTheFile(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("vm\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runPMD(t, context.Background(), "check-config", bad)
	first, rest, _ := strings.Cut(errOut, "\n")
	if code != exitFailed || first != "pmd check-config: "+bad+" has 1 problem(s):" || !strings.HasPrefix(rest, bad+":1:1: ") {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
}

// FuzzStrictJSON: strictJSON never panics on valid JSON, and passes every JSON text
// that encoding/json writes (one key each, valid UTF-8).
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `{"a":{"a":[{"a":1},{"a":1}]},"b":[]}`, `[1,{"x":[]},"s"]`, `{"s":"\ud800"}`, `{"s":"\\ud800\ud83d\ude00"}`, `"\udc00\ud800"`, `1E700`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) {
			return
		}
		_ = strictJSON(s)
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return // a number beyond float64: valid JSON that encoding/json cannot hold
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := strictJSON(string(out)); err != nil {
			t.Fatalf("%s (from %q): %v", out, s, err)
		}
	})
}
