package main

import (
	"context"
	"strings"
	"testing"
)

// TestProcessDotIDs: pmd process, retry and skip of a process id "." or ".." ask the
// daemon for that process (the client escapes the dots) and report that there is none:
// the path /v1/processes/CateringMatch/.. was cleaned by the daemon's router into a
// redirect to /v1/processes, which the client followed and printed as an empty process,
// exit 0.
func TestProcessDotIDs(t *testing.T) {
	// A manager that delivers, so that retry and skip look the process up.
	d := startInProcess(t, cateringConfig(t, "http://127.0.0.1:1/"))
	ctx := context.Background()
	addr := "--addr=" + d.addr
	for _, id := range []string{".", ".."} {
		for _, args := range [][]string{
			{"process", addr, "CateringMatch", id},
			{"process", addr, "--json", "CateringMatch", id},
			{"retry", addr, "CateringMatch", id, "0190c1d2-0000-7000-8000-0000000000c1"},
			{"skip", addr, "CateringMatch", id, "0190c1d2-0000-7000-8000-0000000000c1"},
		} {
			t.Run(strings.Join(args[2:], " "), func(t *testing.T) {
				code, out, errOut := runPMD(t, ctx, args...)
				if code != exitFailed || out != "" || !strings.Contains(errOut, "not_found") || !strings.Contains(errOut, id) {
					t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and not_found naming %q", code, out, errOut, exitFailed, id)
				}
			})
		}
	}
}
