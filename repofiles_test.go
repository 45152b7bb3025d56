package pmd_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// repoFiles lists the files of the repository at dir whose base name keep accepts, as
// paths relative to dir: the files git tracks or would add (untracked, not ignored), so
// that ignored directories (./data, ./cluster-data, a store of any size) are never read.
// Where git cannot list them (no git, or a copy of the source without .git, where it
// lists none or fails) it walks dir instead, leaving out ./data and ./cluster-data, where make run and make cluster keep
// their stores. Either way it leaves out what go leaves out of a package: directories
// named testdata or starting with "." or "_".
func repoFiles(dir string, keep func(name string) bool) ([]string, error) {
	var paths []string
	if listed, err := gitFiles(dir); err == nil && len(listed) > 0 {
		paths = listed
	} else {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			if d.IsDir() && (rel == "data" || rel == "cluster-data") {
				return filepath.SkipDir
			}
			if !d.IsDir() {
				paths = append(paths, rel)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var kept []string
	for _, p := range paths {
		if goIgnores(p) || !keep(filepath.Base(p)) {
			continue
		}
		kept = append(kept, p)
	}
	return kept, nil
}

// gitFiles lists the files git tracks or would add under dir, relative to dir, leaving
// out those deleted from the work tree but not from the index.
func gitFiles(dir string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.Join(err, errors.New(strings.TrimSpace(stderr.String())))
	}
	var paths []string
	for _, p := range strings.Split(string(out), "\x00") {
		if p == "" {
			continue
		}
		p = filepath.FromSlash(p)
		if _, err := os.Lstat(filepath.Join(dir, p)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// goIgnores says whether go build leaves the file at path out: one in a directory named
// testdata or whose name starts with "." or "_".
func goIgnores(path string) bool {
	dirs := strings.Split(filepath.ToSlash(filepath.Dir(path)), "/")
	for _, d := range dirs {
		if d == "testdata" || (d != "." && (strings.HasPrefix(d, ".") || strings.HasPrefix(d, "_"))) {
			return true
		}
	}
	return false
}

// TestRepoFiles: the tests that read the repository's files read those git tracks or would
// add, never an ignored directory (./data, ./cluster-data: a store of any size, walked
// file by file), nor one go leaves out; without git they walk the tree, leaving out
// ./data and ./cluster-data as well.
func TestRepoFiles(t *testing.T) {
	files := []string{
		"a_test.go", "pkg/b_test.go", "new_test.go", "gone_test.go", "doc.go",
		"data/c_test.go", "cluster-data/d_test.go", "ignored/e_test.go",
		"testdata/f_test.go", ".hidden/g_test.go", "_skip/h_test.go",
	}
	for _, tc := range []struct {
		name string
		git  bool
		want []string
	}{
		{"git", true, []string{"a_test.go", "new_test.go", "pkg/b_test.go"}},
		{"no git", false, []string{"a_test.go", "ignored/e_test.go", "new_test.go", "pkg/b_test.go"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range append(files, ".gitignore") {
				writeRepoFile(t, filepath.Join(dir, f), "/data/\n/cluster-data/\n/ignored/\n")
			}
			if tc.git {
				if _, err := exec.LookPath("git"); err != nil {
					t.Skipf("no git: %v", err)
				}
				git := func(args ...string) {
					t.Helper()
					cmd := exec.Command("git", args...)
					cmd.Dir = dir
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
					}
				}
				git("init", "-q")
				// Tracked, one then deleted from the work tree; new_test.go is untracked.
				git("add", "a_test.go", "pkg/b_test.go", "gone_test.go", ".gitignore")
			}
			if err := os.Remove(filepath.Join(dir, "gone_test.go")); err != nil {
				t.Fatal(err)
			}
			got, err := repoFiles(dir, func(name string) bool { return strings.HasSuffix(name, "_test.go") })
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				got[i] = filepath.ToSlash(got[i])
			}
			sort.Strings(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("repoFiles listed %q, want %q", got, tc.want)
			}
		})
	}
}

func writeRepoFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
