package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// pagingDaemon answers the process and parked routes of manager M page by page, as
// a daemon does for a process with more commands, or a command with more delivery
// records, than a page holds, and a manager with more parked commands than a page of
// its bytes: each answer is chosen by the query, and a query it does not know fails.
func pagingDaemon(t *testing.T, pages map[string]string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Path+"?"+r.URL.RawQuery]
		if !ok {
			t.Errorf("unexpected request %s?%s", r.URL.Path, r.URL.RawQuery)
			http.Error(w, `{"error":"unexpected request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestProcessFollowsCommandPages: pmd process reads every page of the commands of a
// process (commands_next) and every page of the delivery records of each
// (attempts_next), so that it lists every command with its attempts counted from all
// its records and the error of the last; it printed the first page only, counting the
// attempts of the first page of records, and said nothing of the rest.
func TestProcessFollowsCommandPages(t *testing.T) {
	const process = `{"manager":"M","id":"7","stream":"M$7","status":"open","state":{},"events":[],"deadlines":[],` +
		`"deliveries_stream":"M.deliveries$7","deliveries_version":12,"older":null,"damaged":[],"panic":"",`
	c1 := `{"id":"0190c1d2-0000-7000-8000-000000000001","type":"Ship","data":{},"position":3,"status":"failing","version":2,`
	addr := pagingDaemon(t, map[string]string{
		"/v1/processes/M/7?": process + `"commands":[` + c1 +
			`"attempts":[{"attempt":1,"outcome":"failed","at":"2026-11-30T10:00:00Z","error":"first"}],"attempts_next":10}],"commands_next":5}`,
		"/v1/processes/M/7?attempts_from=10&commands_from=2&commands_limit=1&limit=1": process + `"commands":[` + c1 +
			`"attempts":[{"attempt":2,"outcome":"failed","at":"2026-11-30T10:01:00Z","error":"second"}],"attempts_next":11}],"commands_next":5}`,
		"/v1/processes/M/7?attempts_from=11&commands_from=2&commands_limit=1&limit=1": process + `"commands":[` + c1 +
			`"attempts":[{"attempt":3,"outcome":"failed","at":"2026-11-30T10:02:00Z","error":"third"}],"attempts_next":null}],"commands_next":5}`,
		"/v1/processes/M/7?commands_from=5&limit=1": process + `"commands":[` +
			`{"id":"0190c1d2-0000-7000-8000-000000000002","type":"Bill","data":{},"position":9,"status":"delivered","version":5,` +
			`"attempts":[{"attempt":1,"outcome":"delivered","at":"2026-11-30T10:03:00Z"}],"attempts_next":null}],"commands_next":null}`,
	})
	ctx := context.Background()

	code, out, errOut := runPMD(t, ctx, "process", "--addr="+addr, "M", "7")
	if code != exitOK {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{"Ship  0190c1d2-0000-7000-8000-000000000001  failing    3         third", "Bill  0190c1d2-0000-7000-8000-000000000002  delivered  1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, errOut = runPMD(t, ctx, "process", "--addr="+addr, "--json", "M", "7")
	if code != exitOK {
		t.Fatalf("--json: exit %d: %s%s", code, out, errOut)
	}
	var p struct {
		Commands []struct {
			ID           string            `json:"id"`
			Attempts     []json.RawMessage `json:"attempts"`
			AttemptsNext *int64            `json:"attempts_next"`
		} `json:"commands"`
		CommandsNext *int64 `json:"commands_next"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("--json: %v:\n%s", err, out)
	}
	if len(p.Commands) != 2 || len(p.Commands[0].Attempts) != 3 || len(p.Commands[1].Attempts) != 1 ||
		p.Commands[0].AttemptsNext != nil || p.CommandsNext != nil {
		t.Errorf("--json: want both commands, the first with its 3 records, and no next page:\n%s", out)
	}
}

// TestProcessRefusesAPageThatGoesBack: a daemon whose commands_next does not move
// forward fails pmd process, naming the version, instead of reading the same page
// forever.
func TestProcessRefusesAPageThatGoesBack(t *testing.T) {
	const page = `{"manager":"M","id":"7","stream":"M$7","status":"open","state":{},"events":[],"deadlines":[],"commands":[],"commands_next":4}`
	addr := pagingDaemon(t, map[string]string{
		"/v1/processes/M/7?":                        page,
		"/v1/processes/M/7?commands_from=4&limit=1": page,
	})
	code, out, errOut := runPMD(t, context.Background(), "process", "--addr="+addr, "M", "7")
	if code == exitOK || !strings.Contains(errOut, "commands_next 4 after commands_from 4") {
		t.Fatalf("exit %d, want a failure naming the page that does not move forward:\n%s%s", code, out, errOut)
	}
}

// TestParkedFollowsPages: pmd parked lists up to --limit commands even when the
// daemon's byte bound cut a page short, reading the next pages, and names the command
// that lists the rest (--from); it printed the first page and said "retry or skip these
// to see the next", which a parked command that is neither retried nor skipped never is.
func TestParkedFollowsPages(t *testing.T) {
	parked := func(id string, pos int) string {
		return `{"process_id":"` + id + `","id":"0190c1d2-0000-7000-8000-00000000000` + id + `","type":"Ship","data":null,"position":` +
			strconv.Itoa(pos) + `,"receiver":"http://r","attempts":3,"error":"down"}`
	}
	addr := pagingDaemon(t, map[string]string{
		"/v1/processes/M/parked?limit=3":         `{"parked":[` + parked("1", 4) + `],"total":4,"next":5}`,
		"/v1/processes/M/parked?limit=2&from=5":  `{"parked":[` + parked("2", 6) + `,` + parked("3", 8) + `],"total":4,"next":9}`,
		"/v1/processes/M/parked?limit=3&from=9":  `{"parked":[` + parked("4", 10) + `],"total":4,"next":null}`,
		"/v1/processes/M/parked?limit=3&from=11": `{"parked":[],"total":4,"next":null}`,
	})
	ctx := context.Background()
	code, out, errOut := runPMD(t, ctx, "parked", "--addr="+addr, "M", "--limit", "3")
	if code != exitOK {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{"00000000001", "00000000002", "00000000003", "(3 of 4; the next: pmd parked M --addr " + addr + " --limit 3 --from 9)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = runPMD(t, ctx, "parked", "--addr="+addr, "M", "--limit", "3", "--from", "9")
	if code != exitOK || !strings.Contains(out, "00000000004") || strings.Contains(out, "the next") || strings.Contains(out, "00000000001") {
		t.Fatalf("--from 9: exit %d, want the last command only:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runPMD(t, ctx, "parked", "--addr="+addr, "M", "--limit", "3", "--from", "11")
	if code != exitOK || !strings.Contains(out, "no parked commands in M at that position or after it (4 in all)") {
		t.Fatalf("--from 11: exit %d, want none listed:\n%s%s", code, out, errOut)
	}
}
