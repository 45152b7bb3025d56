package main

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeOnABusyPortLeavesTheDataDirectoryAlone: pmd serve binds its port first, so
// a start on a port another program holds fails before the data directory is created.
func TestServeOnABusyPortLeavesTheDataDirectoryAlone(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	data := filepath.Join(t.TempDir(), "data")
	code, _, stderr := runPMD(t, context.Background(), "serve", "--data", data, "--addr", busy.Addr().String())
	if code != exitTrouble {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitTrouble, stderr)
	}
	if !strings.Contains(stderr, "listen on "+busy.Addr().String()) {
		t.Fatalf("stderr does not name the address:\n%s", stderr)
	}
	if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the data directory was touched: stat: %v", err)
	}
}
