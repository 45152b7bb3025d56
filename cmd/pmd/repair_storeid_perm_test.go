package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/pmd-dev/pmd"
)

// otherUID is the user the permission tests run pmd as when they run as root, who reads
// every file: nobody.
const otherUID = 65534

// TestRepairStoreIDPermissionDenied: pmd repair and pmd verify of a store whose STORE_ID
// this user may not read say so, and to run them as the store's user, and exit 3 (they
// could not run), changing nothing, repair --yes too: repair called it damage a repair
// does not change, with exit 1, and made the repair anyway; verify a DAMAGE line. Run as root, the test runs pmd as nobody in a
// copy of the test binary (TestRepairStoreIDPermissionDeniedHelper).
func TestRepairStoreIDPermissionDenied(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "store")
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), "Order$1", pmd.Any, pmd.EventData{Type: "Placed"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	id := filepath.Join(dir, "STORE_ID")
	if err := os.Chmod(id, 0); err != nil {
		t.Fatal(err)
	}
	before := listFiles(t, dir)
	for _, args := range [][]string{{"repair", dir}, {"repair", "--yes", dir}, {"verify", dir}} {
		var code int
		var out, errOut string
		if os.Geteuid() == 0 {
			code, out, errOut = runAsOther(t, top, args)
		} else {
			code, out, errOut = runPMD(t, context.Background(), args...)
		}
		want := id + " cannot be read by this user (permission denied): it is not damage; run pmd as the store's user"
		if code != exitTrouble || !strings.Contains(errOut, want) || strings.Contains(out+errOut, "damage that a repair") || strings.Contains(out, "DAMAGE") {
			t.Errorf("%q: exit %d, want %d saying %q:\n%s%s", args, code, exitTrouble, want, out, errOut)
		}
		if after := listFiles(t, dir); !slices.Equal(after, before) {
			t.Fatalf("%q changed the store's files: %q, was %q", args, after, before)
		}
	}
}

// runAsOther runs pmd with args as otherUID, in TestRepairStoreIDPermissionDeniedHelper,
// a copy of the test binary in top, which it gives that user with every file under it.
func runAsOther(t *testing.T, top string, args []string) (int, string, string) {
	t.Helper()
	bin := filepath.Join(top, "pmd.test")
	if _, err := os.Stat(bin); err != nil {
		b, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
		err = filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
			if err != nil || filepath.Base(path) == "STORE_ID" { // root's, 0000
				return err
			}
			return os.Lchown(path, otherUID, otherUID)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Dir(top), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := json.Marshal(args)
	cmd := exec.Command(bin, "-test.run=^TestRepairStoreIDPermissionDeniedHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PMD_CLI_OTHER_ARGS="+string(a))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID, Groups: []uint32{}}}
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pmd as uid %d: %v\n%s", otherUID, err, b)
	}
	var res struct {
		Code        int
		Out, ErrOut string
	}
	if err := json.Unmarshal(b[:strings.LastIndexByte(string(b), '}')+1], &res); err != nil {
		t.Fatalf("pmd as uid %d printed %s: %v", otherUID, b, err)
	}
	return res.Code, res.Out, res.ErrOut
}

// TestRepairStoreIDPermissionDeniedHelper runs the pmd command line runAsOther gives it
// and prints its exit code and output as JSON.
func TestRepairStoreIDPermissionDeniedHelper(t *testing.T) {
	a := os.Getenv("PMD_CLI_OTHER_ARGS")
	if a == "" {
		t.Skip("run by TestRepairStoreIDPermissionDenied")
	}
	var args []string
	if err := json.Unmarshal([]byte(a), &args); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runPMD(t, context.Background(), args...)
	b, _ := json.Marshal(map[string]any{"Code": code, "Out": out, "ErrOut": errOut})
	os.Stdout.Write(b)
}

// listFiles is every file and directory under dir, with its size.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %v %d", path, fi.Mode(), fi.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
