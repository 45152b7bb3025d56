package main

import (
	"context"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// A stream name that starts with a dash is printed bare after --after: pflag takes the next
// word as a string flag's value whatever it starts with, so the printed command, run as
// printed, continues the listing.
func TestStreamsMoreAfterDashName(t *testing.T) {
	d := startInProcess(t, nil)
	ctx := context.Background()
	for _, s := range []string{"-a", "-b", "-c"} {
		if _, err := d.store.Append(ctx, s, pmd.Any, pmd.EventData{Type: "T"}); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := runPMD(t, ctx, "streams", "--addr="+d.addr, "--limit", "2")
	const more = "… more: pmd "
	i := strings.Index(out, more)
	if code != exitOK || i < 0 {
		t.Fatalf("streams: exit %d:\n%s%s", code, out, errOut)
	}
	line := strings.TrimSpace(out[i+len(more):])
	if want := "streams --after -b --limit 2 --addr " + d.addr; line != want {
		t.Fatalf("printed %q, want %q", line, want)
	}
	code, out, errOut = runPMD(t, ctx, strings.Fields(line)...)
	if code != exitOK || !strings.Contains(out, "\n-c ") || strings.Contains(out, "-a") || strings.Contains(out, "-b") {
		t.Fatalf("the printed command: exit %d:\n%s%s", code, out, errOut)
	}
}
