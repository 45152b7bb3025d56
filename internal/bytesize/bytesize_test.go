package bytesize

import "testing"

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1024", 1024, true},
		{"64MiB", 64 << 20, true},
		{"64mib", 64 << 20, true},
		{"64M", 64 << 20, true},
		{"1GB", 1e9, true},
		{"2 GiB", 2 << 30, true},
		{"512k", 512 << 10, true},
		{"10B", 10, true},
		{"", 0, false},
		{"0", 0, false},
		{"-5M", 0, false},
		{"1.5G", 0, false},
		{"lots", 0, false},
		{"99999999999999GiB", 0, false},
	} {
		got, err := Parse(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
