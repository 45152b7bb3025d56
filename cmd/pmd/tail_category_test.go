package main

import (
	"context"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestTailCategory: pmd tail --category C follows the events written to the streams
// C$…, by position: with --from, the stored ones from that position first; without it,
// those written after it started. Events of other categories, and links into the
// category's streams, are not its.
func TestTailCategory(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want []string // the lines, by their first fields
	}{
		{"from a position", []string{"--from", "2"}, []string{"3  ", "7  "}},
		{"from the end", nil, []string{"7  "}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := startInProcess(t, nil)
			ctx := context.Background()
			write := func(stream string) pmd.WriteResult {
				t.Helper()
				res, err := d.store.Append(ctx, stream, pmd.Any, pmd.EventData{Type: "Of" + stream})
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			write("Order$1")           // 1
			paid := write("Payment$1") // 2
			write("Order$2")           // 3
			write("Orders")            // 4

			tail := runInBackground(t, ctx, append([]string{"tail", "--addr", d.addr, "--category", "Order"}, tt.args...)...)
			tail.errOut.waitFor(t, "following category Order at ")
			if _, err := d.store.Link(ctx, "Order$1", pmd.Any, paid.IDs[0]); err != nil { // 5
				t.Fatal(err)
			}
			write("Payment$2") // 6
			write("Order$3")   // 7
			tail.out.waitFor(t, "OfOrder$3")
			if code := tail.stop(); code != exitOK {
				t.Fatalf("tail exit %d; stderr:\n%s", code, tail.errOut.String())
			}
			lines := strings.Split(strings.TrimSuffix(tail.out.String(), "\n"), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("printed %d lines, want %d:\n%s", len(lines), len(tt.want), tail.out.String())
			}
			for i, want := range tt.want {
				if !strings.HasPrefix(lines[i], want) || !strings.Contains(lines[i], "OfOrder$") {
					t.Errorf("line %d is %q, want it to start with %q and be an Order$ event", i, lines[i], want)
				}
			}
		})
	}
}

// TestTailCategoryRefused: --category takes a category, not a stream's name, and not
// with --stream or --types, as the daemon refuses them: a command line error (exit 2)
// naming what was wrong, before anything is sent.
func TestTailCategoryRefused(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--category", ""}, "--category "},
		{[]string{"--category", "Order$1"}, `--category "Order$1" holds a $`},
		{[]string{"--category", "Order", "--stream", "Order$1"}, "give --category or --stream, not both"},
		{[]string{"--category", "Order", "--stream", "$all"}, "give --category or --stream, not both"},
		{[]string{"--category", "Order", "--types", "Placed"}, "give --category or --types, not both"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append([]string{"--addr", "127.0.0.1:1", "tail"}, tt.args...)
			code, _, errOut := runPMD(t, context.Background(), args...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Fatalf("pmd tail %q: exit %d, %q; want exit %d with %q", tt.args, code, errOut, exitUsage, tt.want)
			}
		})
	}
}
