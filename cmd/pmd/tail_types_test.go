package main

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// TestTailTypesRefused: --types names event types, comma-separated and nothing else.
// An empty value, as an empty --stream is, is refused rather than taken as no filter (the whole
// log); so are an empty element and a type with spaces around it, which no event would
// match (Paid, Picked followed " Picked"). The error names the value given.
func TestTailTypesRefused(t *testing.T) {
	for _, tt := range []struct {
		types, want string
	}{
		{"", `--types "" is empty: give event types, or leave --types out to follow every type`},
		{"Paid, Picked", `--types "Paid, Picked": type 2 of 2 " Picked" has white space around it; separate the types with commas alone, as in Paid,Picked`},
		{"Paid ,Picked", `--types "Paid ,Picked": type 1 of 2 "Paid " has white space around it`},
		{" ", `--types " ": type 1 of 1 " " has white space around it`},
		{"A,,B", `--types "A,,B": type 2 of 3 must not be empty`},
		{"A,", `--types "A,": type 2 of 2 must not be empty`},
	} {
		t.Run(tt.types, func(t *testing.T) {
			code, _, errOut := runPMD(t, context.Background(), "--addr", "127.0.0.1:1", "tail", "--types", tt.types)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Fatalf("pmd tail --types %q: exit %d, %q; want exit %d with %q", tt.types, code, errOut, exitUsage, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		types string
		want  []string
	}{
		{"Paid", []string{"Paid"}},
		{"Paid,Picked", []string{"Paid", "Picked"}},
		{"Order Paid,Picked", []string{"Order Paid", "Picked"}}, // a space inside a type is the type's
	} {
		if got, err := splitTypes(tt.types); err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("splitTypes(%q) = %q, %v; want %q", tt.types, got, err, tt.want)
		}
	}
}
