package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pmd-dev/pmd"
)

// cmdWriter is the child that cmdCrash kills: 16 writers appending with fsync on, with
// pmd's default index flushing, until the process dies. It prints "ready" once open.
func cmdWriter(args []string) error {
	fs := flag.NewFlagSet("writer", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory")
	writers := fs.Int("writers", 16, "concurrent writers")
	fs.Parse(args)
	s, err := pmd.Open(*dir, pmd.Options{Logger: quiet()})
	if err != nil {
		return err
	}
	var n atomic.Int64
	for w := 0; w < *writers; w++ {
		go func(w int) {
			for i := 0; ; i++ {
				if _, err := s.Append(context.Background(), fmt.Sprintf("Crash$%d-%d-%d", os.Getpid(), w, i/10), pmd.Any,
					pmd.EventData{Type: "OrderPlaced", Data: payload}); err != nil {
					fmt.Fprintln(os.Stderr, "writer:", err)
					os.Exit(1)
				}
				n.Add(1)
			}
		}(w)
	}
	fmt.Println("ready")
	for {
		time.Sleep(time.Second)
		fmt.Println(n.Load())
	}
}

type crashResult struct {
	Cmd        string  `json:"cmd"`
	Events     int64   `json:"events"`
	AfterS     float64 `json:"killed_after_s"`
	Appended   int64   `json:"appended_before_kill"`
	OpenMS     float64 `json:"open_ms"`
	RSSOpenMB  float64 `json:"rss_open_mb"`
	ReplayP50  float64 `json:"replay_p50_us"`
	ReplayP99  float64 `json:"replay_p99_us"`
	ReplayedOK int     `json:"replayed_streams"`
}

// cmdCrash starts a writer child, kills it with SIGKILL after each delay, and times the
// next open in a fresh child process.
func cmdCrash(args []string) error {
	fs := flag.NewFlagSet("crash", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory")
	delays := fs.String("delays", "4s,9.5s,14s", "how long the writer runs before each kill")
	fs.Parse(args)
	return crash(*dir, *delays)
}

func crash(dir, delays string) error {
	st, err := readState(dir)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	for _, ds := range strings.Split(delays, ",") {
		d, err := time.ParseDuration(ds)
		if err != nil {
			return err
		}
		cmd := exec.Command(exe, "writer", "-dir", dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		lines := bufio.NewScanner(out)
		if !lines.Scan() || lines.Text() != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			return fmt.Errorf("writer did not start")
		}
		var last atomic.Int64
		go func() {
			for lines.Scan() {
				var n int64
				fmt.Sscan(lines.Text(), &n)
				last.Store(n)
			}
		}()
		time.Sleep(d)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		var o openResult
		if err := runChild(&o, "open", "-dir", dir, "-streams", "1000"); err != nil {
			return err
		}
		printJSON(crashResult{Cmd: "crash", Events: st.Loaded, AfterS: d.Seconds(), Appended: last.Load(),
			OpenMS: o.OpenMS, RSSOpenMB: o.RSSOpenMB, ReplayP50: o.ReplayP50, ReplayP99: o.ReplayP99, ReplayedOK: o.Replayed})
	}
	return nil
}
