package main

import (
	"flag"
	"fmt"
	"os"
)

// cmdAll loads a baseline store of 100k events and the store of -size, then runs mem,
// crash, replay and stall on them. Stores are kept (reuse them with -dir); the stall and
// crash runs add events of their own streams to them.
func cmdAll(args []string) error {
	fs := flag.NewFlagSet("all", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory of the big store")
	base := fs.String("base", "", "data directory of the 100k-event baseline store (default <dir>-100k)")
	size := fs.String("size", "10M", "events in the big store")
	seconds := fs.Float64("stall-seconds", 60, "seconds of each stall run")
	fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	if *base == "" {
		*base = *dir + "-100k"
	}
	n, err := parseSize(*size)
	if err != nil {
		return err
	}
	step := func(name string, f func() error) error {
		fmt.Fprintf(os.Stderr, "== %s\n", name)
		return f()
	}
	if err := step("load baseline", func() error { return load(*base, 100_000, 16) }); err != nil {
		return err
	}
	if err := step("load "+sizeName(n), func() error { return load(*dir, n, 16) }); err != nil {
		return err
	}
	if err := step("mem", func() error { return mem(*dir, "16,64,256", 1, 10000) }); err != nil {
		return err
	}
	if err := step("replay", func() error { return cmdReplay([]string{"-dir", *dir}) }); err != nil {
		return err
	}
	if err := step("stall", func() error {
		return stallPair(*base, *dir, 16, *seconds, defaultProbeEvery, false)
	}); err != nil {
		return err
	}
	return step("crash", func() error { return crash(*dir, "4s,9.5s,14s") })
}
