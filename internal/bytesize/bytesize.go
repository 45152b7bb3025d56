// Package bytesize reads the byte sizes of pmd's flags and config file: a whole number
// with an optional unit (64MiB, 1GB, 512k).
package bytesize

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Errors of Parse, matched with errors.Is.
var (
	ErrNotASize = errors.New("not a size")
	ErrTooLarge = errors.New("too large")
)

// Parse reads a byte size: a positive whole number with an optional unit, B, KB/MB/GB
// (powers of 1000) or KiB/MiB/GiB (powers of 1024), case-insensitive; K, M and G alone
// are the binary ones, as in most tools' --cache flags. Its error names s and matches
// ErrNotASize or ErrTooLarge (past 2^62 bytes).
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
	}
	mult := int64(1)
	lower := strings.ToLower(t)
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			mult, t = u.mult, strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is %w: want a positive whole number with an optional unit, like 64MiB or 1GB", s, ErrNotASize)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is %w", s, ErrTooLarge)
	}
	return n * mult, nil
}
