package dedup

import (
	"slices"
	"testing"
)

func TestKeepLast(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in, out []string
	}{
		{"nil", nil, nil},
		{"one", []string{"a"}, []string{"a"}},
		{"no repeat", []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{"repeat at its last place", []string{"a", "b", "a"}, []string{"b", "a"}},
		{"repeats of several", []string{"b", "a", "b", "c", "a", "a"}, []string{"b", "c", "a"}},
		{"all the same", []string{"x", "x", "x"}, []string{"x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			got := KeepLast(in)
			if !slices.Equal(got, tc.out) {
				t.Fatalf("KeepLast(%q) = %q, want %q", tc.in, got, tc.out)
			}
			if len(got) > 0 && &got[0] != &in[0] {
				t.Fatalf("KeepLast(%q) did not work in place", tc.in)
			}
		})
	}
}
