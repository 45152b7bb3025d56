package engine_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
)

// TestRootKilledWhileReplacingAFile: root killed while it wrote a file of the store's
// user's data directory through a temporary file (the upgrade of the format file, a
// store id) leaves that temporary file root's. The store's user, whose start writes the
// same file again, starts the store all the same: the write refused with "permission
// denied" to open the temporary file, and the store did not start until someone
// removed it.
func TestRootKilledWhileReplacingAFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to open the store as another uid")
	}
	for _, tc := range []struct {
		name   string
		file   string
		before func(t *testing.T, dir string) // leaves the file as it was when root was killed
	}{
		{"the upgrade from format 2", engine.FormatFile, func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, engine.FormatFile), []byte("pmd data directory format 2\n"), 0o640); err != nil {
				t.Fatal(err)
			}
		}},
		{"a store id", engine.StoreIDFile, func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, engine.StoreIDFile)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			dir := filepath.Join(top, "store")
			events := len(appendEvents(t, dir, 0, 20))
			tc.before(t, dir)
			giveAll(t, top)
			if err := os.Chmod(filepath.Dir(top), 0o755); err != nil {
				t.Fatal(err)
			}
			// What os.WriteFile made before root was killed: root's, 0640.
			if err := os.WriteFile(filepath.Join(dir, tc.file+".tmp"), nil, 0o640); err != nil {
				t.Fatal(err)
			}
			out := openAs(t, top, dir, storeUID, "open")
			if !strings.Contains(out, fmt.Sprintf("read %d events", events)) {
				t.Errorf("the store's user read %s, want %d events", out, events)
			}
		})
	}
}
