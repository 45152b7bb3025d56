package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/testcert"
)

// TestFlagsInAnyPosition: a flag means the same before the arguments, between them and
// after them, and before the command name for the global ones.
func TestFlagsInAnyPosition(t *testing.T) {
	d := startInProcess(t, nil)
	ctx := context.Background()
	for i := range 3 {
		if _, err := d.store.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: fmt.Sprintf("E%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	addr := "--addr=" + d.addr
	tests := []struct {
		name string
		args []string
	}{
		{"flags first", []string{"read", addr, "--limit", "1", "--from", "1", "Order$1"}},
		{"flags last", []string{"read", "Order$1", "--limit", "1", "--from", "1", addr}},
		{"flags around", []string{"read", "--limit=1", "Order$1", "--from", "1", addr}},
		{"global flag before the command", []string{addr, "read", "Order$1", "--from=1", "--limit=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runPMD(t, ctx, tt.args...)
			if code != exitOK || !strings.Contains(out, "E1") || strings.Contains(out, "E0") || strings.Contains(out, "E2") ||
				!strings.Contains(out, "… more: pmd read --from 2 --limit 1 'Order$1'") {
				t.Fatalf("exit %d:\n%s%s", code, out, errOut)
			}
		})
	}
	// The same for append, whose expected version comes after its arguments.
	code, out, errOut := runPMD(t, ctx, "append", "Order$1", "E3", `{"n":1}`, "--expected", "2", addr)
	if code != exitOK || !strings.Contains(out, "at version 3") {
		t.Fatalf("append with flags last: exit %d: %s%s", code, out, errOut)
	}
}

// TestAddrAndTokenFromTheEnvironment: PMD_ADDR and PMD_TOKEN reach every client
// command; the flags win over them.
func TestAddrAndTokenFromTheEnvironment(t *testing.T) {
	got := make(chan string, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"streams":[{"name":"Order$1","version":4,"exists":true}],"next":null}`)
	}))
	defer ts.Close()
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		wantToken string
	}{
		{"environment", map[string]string{"PMD_ADDR": ts.URL, "PMD_TOKEN": "from-env"}, nil, "Bearer from-env"},
		{"flags win", map[string]string{"PMD_ADDR": "127.0.0.1:1", "PMD_TOKEN": "from-env"}, []string{"--addr", ts.URL, "--token", "from-flag"}, "Bearer from-flag"},
		{"no token", map[string]string{"PMD_ADDR": ts.URL, "PMD_TOKEN": ""}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			code, out, errOut := runPMD(t, context.Background(), append([]string{"streams"}, tt.args...)...)
			if code != exitOK || !strings.Contains(out, "Order$1  4") {
				t.Fatalf("exit %d:\n%s%s", code, out, errOut)
			}
			if token := <-got; token != tt.wantToken {
				t.Fatalf("Authorization %q, want %q", token, tt.wantToken)
			}
		})
	}
}

func TestStreamsDeleteCategoryAndVersion(t *testing.T) {
	d := startInProcess(t, nil)
	ctx := context.Background()
	addr := "--addr=" + d.addr
	for _, s := range []string{"Order$1", "Order$2", "Order$3", "Invoice$1"} {
		if _, err := d.store.Append(ctx, s, pmd.Any, pmd.EventData{Type: "In" + s[:5]}); err != nil {
			t.Fatal(err)
		}
	}
	code, out, _ := runPMD(t, ctx, "streams", addr, "--prefix", "Order$", "--limit", "2")
	if code != exitOK || !strings.Contains(out, "Order$1") || !strings.Contains(out, "Order$2") || strings.Contains(out, "Order$3") ||
		!strings.Contains(out, "… more: pmd streams --prefix 'Order$' --after 'Order$2' --limit 2") {
		t.Fatalf("streams: exit %d:\n%s", code, out)
	}
	code, out, _ = runPMD(t, ctx, "streams", addr, "--json", "--after", "Order$2")
	var list struct {
		Streams []struct{ Name string } `json:"streams"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &list) != nil || len(list.Streams) != 1 || list.Streams[0].Name != "Order$3" {
		t.Fatalf("streams --json: exit %d:\n%s", code, out)
	}

	code, out, _ = runPMD(t, ctx, "category", addr, "Order", "--backward", "--limit", "2")
	if code != exitOK || strings.Index(out, "Order$3") > strings.Index(out, "Order$2") || strings.Contains(out, "Invoice") ||
		!strings.Contains(out, "… more: pmd category --backward --from 1 --limit 2 Order") {
		t.Fatalf("category: exit %d:\n%s", code, out)
	}

	code, _, errOut := runPMD(t, ctx, "delete", addr, "Order$2", "--expected", "5")
	if code != exitFailed || !strings.Contains(errOut, "wrong_expected_version") {
		t.Fatalf("delete at a wrong version: exit %d: %s", code, errOut)
	}
	code, out, _ = runPMD(t, ctx, "delete", "Order$2", addr, "--expected", "0")
	if code != exitOK || out != "deleted Order$2\n" {
		t.Fatalf("delete: exit %d: %q", code, out)
	}
	code, _, errOut = runPMD(t, ctx, "read", addr, "Order$2")
	if code != exitFailed || !strings.Contains(errOut, "stream_not_found") {
		t.Fatalf("read of a deleted stream: exit %d: %s", code, errOut)
	}
	code, out, _ = runPMD(t, ctx, "streams", addr, "--prefix", "Order$2")
	if code != exitOK || !strings.Contains(out, "(deleted)") {
		t.Fatalf("streams after a delete: exit %d:\n%s", code, out)
	}

	code, out, _ = runPMD(t, ctx, "version")
	if code != exitOK || !regexp.MustCompile(`^pmd \S+ .*go1\.\d+.* \w+/\w+\n$`).MatchString(out) {
		t.Fatalf("version: exit %d: %q", code, out)
	}
}

// TestTimesCarryTheirZone: every time printed for people says its zone.
func TestTimesCarryTheirZone(t *testing.T) {
	d := startInProcess(t, nil)
	ctx := context.Background()
	if _, err := d.store.Append(ctx, "s", pmd.Any, pmd.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runPMD(t, ctx, "read", "--addr", d.addr, "s")
	zoned := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)\s`)
	if code != exitOK || !zoned.MatchString(out) {
		t.Fatalf("read: exit %d, no time with a zone:\n%s", code, out)
	}
}

// TestTailFromAPositionOrTheEnd: --from catches up from a position, then follows;
// without it, tail starts after what is stored.
func TestTailFromAPositionOrTheEnd(t *testing.T) {
	tests := []struct {
		name, stream string
		from         string
		want         []string // the events of the first three, "old" ones, tail prints
	}{
		{"global log from a position", "", "2", []string{"old1", "old2"}},
		{"global log from the end", "", "", nil},
		{"stream from a version", "s", "1", []string{"old1", "old2"}},
		{"stream from the end", "s", "", nil},
		{"stream that does not exist yet", "later", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startInProcess(t, nil)
			ctx := context.Background()
			for i := range 3 {
				if _, err := d.store.Append(ctx, "s", pmd.Any, pmd.EventData{Type: fmt.Sprintf("old%d", i)}); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"tail", "--addr", d.addr}
			if tt.stream != "" {
				args = append(args, "--stream", tt.stream)
			}
			if tt.from != "" {
				args = append(args, "--from", tt.from)
			}
			tail := runInBackground(t, ctx, args...)
			// Once tail says where it starts, what is appended is after that.
			tail.errOut.waitFor(t, "following")
			if _, err := d.store.Append(ctx, cmp.Or(tt.stream, "s"), pmd.Any, pmd.EventData{Type: "new"}); err != nil {
				t.Fatal(err)
			}
			tail.out.waitFor(t, "new")
			if code := tail.stop(); code != exitOK {
				t.Fatalf("tail exit %d: %s", code, tail.errOut.String())
			}
			var got []string
			for _, typ := range []string{"old0", "old1", "old2"} {
				if strings.Contains(tail.out.String(), typ) {
					got = append(got, typ)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("tail printed %v of the stored events, want %v:\n%s", got, tt.want, tail.out.String())
			}
		})
	}
}

// TestUsageErrors: a command line that does not make sense exits 2 with a message
// naming what is wrong.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"raed", "s"}, `unknown command "raed"; did you mean read?`},
		{[]string{"append", "s", "T"}, "want STREAM TYPE JSON"},
		{[]string{"append", "s", "T", "[1]"}, `the event data "[1]" is not a JSON object`},
		{[]string{"append", "s", "T", "{}", "--expected", "-2"}, "--expected must be any, no_stream, stream_exists or an integer ≥ -1"},
		{[]string{"append", "s", "T", "{}", "--id", "x"}, `--id "x" is not a UUID`},
		{[]string{"append", "s", "T", "{}", "--metadata", "1"}, `--metadata "1" is not a JSON object`},
		{[]string{"link", "s"}, "want STREAM ID..."},
		{[]string{"link", "s", "nope"}, `ID "nope" is not a UUID`},
		{[]string{"link", "s", "urn:uuid:0190c1d2-0000-7000-8000-000000000001"}, `ID "urn:uuid:0190c1d2-0000-7000-8000-000000000001" is not a UUID`},
		{[]string{"append", "s", "T", "{}", "--id", "{0190c1d2-0000-7000-8000-000000000001}"}, `--id "{0190c1d2-0000-7000-8000-000000000001}" is not a UUID`},
		{[]string{"read"}, "want STREAM (or $all), got 0 argument(s)"},
		{[]string{"read", "s", "--limit", "0"}, "--limit must be ≥ 1"},
		{[]string{"read", "s", "--from", "-1"}, `--from must be a non-negative integer, got "-1"`},
		{[]string{"read", "s", "--colour"}, "unknown flag: --colour"},
		{[]string{"category"}, "want NAME"},
		{[]string{"streams", "x"}, "want no arguments"},
		{[]string{"delete"}, "want STREAM"},
		{[]string{"tail", "--stream", "s", "--types", "A"}, "give --stream or --types, not both"},
		{[]string{"tail", "--from", "x"}, `--from must be a non-negative integer, got "x"`},
		{[]string{"process", "CateringMatch"}, "want NAME ID"},
		{[]string{"read", "s", "--addr", "ftp://x"}, `--addr: client: address "ftp://x"`},
		{[]string{"verify"}, "want DIR"},
		{[]string{"version", "x"}, "want no arguments"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errOut := runPMD(t, context.Background(), tt.args...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, exitUsage, tt.want, errOut)
			}
		})
	}
}

// TestHelpAndCompletion: help names each command's arguments, and shell completion
// offers commands and the daemon's stream names.
func TestHelpAndCompletion(t *testing.T) {
	d := startInProcess(t, nil)
	ctx := context.Background()
	for _, s := range []string{"Order$1", "Order$2", "Invoice$1"} {
		if _, err := d.store.Append(ctx, s, pmd.Any, pmd.EventData{Type: "E"}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"--help"}, []string{"append", "category", "streams", "delete", "tail", "version", "serve", "verify", "repair", "--addr", "--token"}, nil},
		{[]string{"append", "--help"}, []string{"pmd append STREAM TYPE JSON [flags]", "--expected", "--addr"}, nil},
		{[]string{"link", "-h"}, []string{"pmd link STREAM ID... [flags]"}, nil},
		{[]string{"help", "process"}, []string{"pmd process [NAME ID] [flags]"}, nil},
		{[]string{"help", "serve"}, []string{"-data", "-config", "-no-sync"}, nil},
		{[]string{"completion", "bash"}, []string{"__start_pmd"}, nil},
		{[]string{"__complete", "--addr", d.addr, "read", "Ord"}, []string{"Order$1\nOrder$2\n"}, []string{"Invoice"}},
		{[]string{"__complete", "--addr", d.addr, "tail", "--stream", "Inv"}, []string{"Invoice$1\n"}, []string{"Order"}},
		{[]string{"__complete", "de"}, []string{"delete"}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runPMD(t, ctx, tt.args...)
			all := out + errOut
			if code != exitOK {
				t.Fatalf("exit %d:\n%s", code, all)
			}
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out, n) {
					t.Errorf("output has %q:\n%s", n, out)
				}
			}
		})
	}
}

// TestDeleteSaysWhetherThereWasAStream: a delete of a stream with no event (never
// written, or deleted already) succeeds, as the API's does, but says there was nothing
// to delete instead of claiming it deleted something; --expected stream_exists makes
// it fail instead, for a script that must know. The store is unchanged by it.
func TestDeleteSaysWhetherThereWasAStream(t *testing.T) {
	d := startInProcess(t, nil)
	ctx := context.Background()
	addr := "--addr=" + d.addr
	for _, s := range []string{"Order$1", "Order$2", "Gone$1"} {
		if _, err := d.store.Append(ctx, s, pmd.Any, pmd.EventData{Type: "E"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.store.DeleteStream(ctx, "Gone$1", pmd.Any); err != nil {
		t.Fatal(err)
	}
	const nothing = "nothing to delete: stream %s does not exist (never written, or deleted already)\n"
	tests := []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"Never$1"}, exitOK, fmt.Sprintf(nothing, "Never$1"), ""},
		{[]string{"Gone$1"}, exitOK, fmt.Sprintf(nothing, "Gone$1"), ""},
		{[]string{"Never$1", "--expected", "no_stream"}, exitOK, fmt.Sprintf(nothing, "Never$1"), ""},
		{[]string{"Never$1", "--expected", "stream_exists"}, exitFailed, "", "wrong_expected_version"},
		{[]string{"Never$1", "--expected", "0"}, exitFailed, "", "wrong_expected_version"},
		{[]string{"Order$1", "--expected", "no_stream"}, exitFailed, "", "wrong_expected_version"},
		{[]string{"Order$1"}, exitOK, "deleted Order$1\n", ""},
		{[]string{"Order$2", "--expected", "stream_exists"}, exitOK, "deleted Order$2\n", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			before := d.store.LastPosition()
			code, out, errOut := runPMD(t, ctx, append([]string{"delete", addr}, tt.args...)...)
			if code != tt.code || out != tt.out || !strings.Contains(errOut, tt.err) {
				t.Fatalf("exit %d, want %d: stdout %q, want %q; stderr %q, want %q in it", code, tt.code, out, tt.out, errOut, tt.err)
			}
			if after := d.store.LastPosition(); !strings.HasPrefix(tt.out, "deleted") && after != before {
				t.Fatalf("the log grew from position %d to %d", before, after)
			}
		})
	}
}

// TestMoreKeepsThePageSize: the command a page prints for the next one reads a page of
// the same size from the same daemon (an --addr or --tls-ca given on the command line is
// repeated, one equal to PMD_ADDR's is not), and that command, as the shell reads it,
// prints the rest.
func TestMoreKeepsThePageSize(t *testing.T) {
	t.Setenv("PMD_ADDR", "")
	t.Setenv("PMD_TLS_CA", "")
	d := startInProcess(t, nil)
	ctx := context.Background()
	for i := range 3 {
		if _, err := d.store.Append(ctx, fmt.Sprintf("Order$%d", i), pmd.Any, pmd.EventData{Type: fmt.Sprintf("E%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// A CA file in a directory whose name the shell would split and glob, were it not
	// quoted. The daemon is plain http, so the CA is loaded but not used.
	caDir := filepath.Join(t.TempDir(), "the CAs\tof [1]")
	if err := os.Mkdir(caDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca, _, _ := testcert.Write(t, caDir, "pmd")
	tests := []struct {
		pmdAddr string // PMD_ADDR
		args    []string
		more    string
		before  func() // the events the case reads, written before it runs (the others read those of the test)
	}{
		{"", []string{"read", "$all", "--limit", "2"}, "… more: pmd read --from 3 --limit 2 '$all' --addr " + d.addr + "\n", nil},
		{"", []string{"read", "$all", "--limit", "2", "--backward"}, "… more: pmd read --backward --from 1 --limit 2 '$all' --addr " + d.addr + "\n", nil},
		{"", []string{"category", "Order", "--limit", "2"}, "… more: pmd category --from 3 --limit 2 Order --addr " + d.addr + "\n", nil},
		{"", []string{"streams", "--prefix", "Order$", "--limit", "2"}, "… more: pmd streams --prefix 'Order$' --after 'Order$1' --limit 2 --addr " + d.addr + "\n", nil},
		{d.addr, []string{"read", "$all", "--limit", "2"}, "… more: pmd read --from 3 --limit 2 '$all'\n", nil},
		{"", []string{"read", "$all", "--limit", "2", "--tls-ca", ca}, "… more: pmd read --from 3 --limit 2 '$all' --addr " + d.addr + " --tls-ca '" + ca + "'\n", nil},
		{d.addr, []string{"streams", "--limit", "2", "--tls-ca", ca}, "… more: pmd streams --after 'Order$1' --limit 2 --tls-ca '" + ca + "'\n", nil},
		// Last, as it writes to the log the others read: a stream whose name starts with
		// '-' comes after -- in the printed command, which would otherwise take it for a flag.
		{"", []string{"read", "--limit", "2", "--", "-x"}, "… more: pmd read --from 2 --limit 2 --addr " + d.addr + " -- -x\n", func() {
			for range 3 {
				if _, err := d.store.Append(ctx, "-x", pmd.Any, pmd.EventData{Type: "E"}); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.pmdAddr+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			t.Setenv("PMD_ADDR", tt.pmdAddr)
			if tt.before != nil {
				tt.before()
			}
			code, out, errOut := runPMD(t, ctx, append([]string{tt.args[0], "--addr", d.addr}, tt.args[1:]...)...)
			if code != exitOK || !strings.HasSuffix(out, tt.more) {
				t.Fatalf("exit %d, want the last line %q:\n%s%s", code, tt.more, out, errOut)
			}
			// The next page is the rest: one more row, and no further page.
			next := shellWords(t, strings.TrimPrefix(strings.TrimSuffix(tt.more, "\n"), "… more: pmd "))
			code, out, errOut = runPMD(t, ctx, next...)
			if code != exitOK || strings.Contains(out, "more:") || strings.Count(out, "\n") != 2 {
				t.Fatalf("%q: exit %d, want one row and no next page:\n%s%s", next, code, out, errOut)
			}
		})
	}
}

// shellWords returns the words bash reads in line, run in an empty directory but for
// files named as what an unquoted glob in line would match.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to read the printed command:", err)
	}
	dir := t.TempDir()
	for _, name := range []string{"1:7070", ":7070", "a", "ab", "b"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", `printf '%s\0' `+line)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bash -c %q: %v", line, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}

// TestShellQuote: a string shellQuote leaves bare holds nothing the shell reads
// specially, and every string reads back, in bash, as itself.
func TestShellQuote(t *testing.T) {
	tests := []struct {
		s, want string
	}{
		{"127.0.0.1:7070", "127.0.0.1:7070"},
		{"Order-1_a.b/c@d%e+f,g=h", "Order-1_a.b/c@d%e+f,g=h"},
		{"", "''"},
		{"[::1]:7070", "'[::1]:7070'"},
		{"a\tb", "'a\tb'"},
		{"a\nb", "'a\nb'"},
		{"a b", "'a b'"},
		{"Order$1", "'Order$1'"},
		{"it's", `'it'\''s'`},
		{"a*", "'a*'"},
		{"{a,b}", "'{a,b}'"},
		{"~root", "'~root'"},
		{"x=~", "'x=~'"},
		{"=ls", "'=ls'"}, // zsh reads a leading = as a command's path
		{"a^b", "'a^b'"},
		{"é", "'é'"},
		{"\\", `'\'`},
	}
	for _, tt := range tests {
		got := shellQuote(tt.s)
		if got != tt.want {
			t.Errorf("shellQuote(%q) = %q, want %q", tt.s, got, tt.want)
			continue
		}
		if words := shellWords(t, got); len(words) != 1 || words[0] != tt.s {
			t.Errorf("bash reads %s as %q, want %q", got, words, tt.s)
		}
	}
}

// TestUnauthorizedNamesTheTokenFlag: a daemon that wants a token (or another one) is a
// refused request, exit 1, and the message says how the command line gives one.
func TestUnauthorizedNamesTheTokenFlag(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"unauthorized","message":"this pmd needs a token: send Authorization: Bearer <token>"}`)
	}))
	defer ts.Close()
	t.Setenv("PMD_TOKEN", "")
	code, out, errOut := runPMD(t, context.Background(), "streams", "--addr", ts.URL)
	want := "pmd streams: unauthorized: this pmd needs a token: send Authorization: Bearer <token> (--token or PMD_TOKEN gives the token)\n"
	if code != exitFailed || out != "" || errOut != want {
		t.Fatalf("exit %d, want %d; stdout %q; stderr %q, want %q", code, exitFailed, out, errOut, want)
	}
}

// TestProcessWithoutManagersSaysSo: the list of a daemon that runs no process manager
// says so, as the lists of subscriptions and streams do, instead of a bare header.
func TestProcessWithoutManagersSaysSo(t *testing.T) {
	d := startInProcess(t, nil)
	code, out, errOut := runPMD(t, context.Background(), "process", "--addr", d.addr)
	if code != exitOK || out != "no process managers (pmd serve --config names a file of them)\n" {
		t.Fatalf("exit %d: %q%s", code, out, errOut)
	}
}

// TestAppendOfAStoredIDSaysNothingWasAppended: an append whose --id is already stored in
// that stream is a retry the daemon answers with the earlier append's result, writing
// nothing: the command says so instead of "appended", and exits 0 as the API succeeds.
func TestAppendOfAStoredIDSaysNothingWasAppended(t *testing.T) {
	d := startInProcess(t, nil)
	ctx := context.Background()
	addr := "--addr=" + d.addr
	const id = "0190c1d2-0000-7000-8000-000000000001"
	if _, err := d.store.Append(ctx, "Other", pmd.Any, pmd.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		out  string
	}{
		{[]string{"Order$1", "Placed", "{}", "--id", id}, "appended Placed to Order$1 at version 0 (position 2, id " + id + ")\n"},
		{[]string{"Order$1", "Placed", "{}", "--id", id}, "nothing appended: event " + id + " is stored already, at version 0 of Order$1 (position 2); an append of the same ids to the same stream is a retry\n"},
		{[]string{"Order$1", "Other", `{"a":1}`, "--id", id}, "nothing appended: event " + id + " is stored already, at version 0 of Order$1 (position 2); an append of the same ids to the same stream is a retry\n"},
		{[]string{"Order$1", "Paid", "{}"}, "appended Paid to Order$1 at version 1 (position 3, id "},
	}
	for i, tt := range tests {
		before := d.store.LastPosition()
		code, out, errOut := runPMD(t, ctx, append([]string{"append", addr}, tt.args...)...)
		if code != exitOK || !strings.HasPrefix(out, tt.out) {
			t.Fatalf("%d %q: exit %d: %q%s, want %q", i, tt.args, code, out, errOut, tt.out)
		}
		if after := d.store.LastPosition(); strings.HasPrefix(tt.out, "nothing") && after != before {
			t.Fatalf("%d: the log grew from %d to %d", i, before, after)
		}
	}
}
