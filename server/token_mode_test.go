package server

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestTokenFileWritableByEveryUser: a token file every user may write lets any local
// user add a token of their own, admin among the scopes: it is refused at start, and a
// reload that finds it so keeps the tokens in use.
func TestTokenFileWritableByEveryUser(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no mode bits for other users")
	}
	path := testTokenFile(t)
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("token file %s is writable by every user (mode 0666)", path)
	if _, err := LoadTokens(path); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
	// Group-writable is the owner's choice (a pmd group of its operators): taken.
	if err := os.Chmod(path, 0o664); err != nil {
		t.Fatal(err)
	}
	tokens, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o646); err != nil {
		t.Fatal(err)
	}
	if err := tokens.Reload(); err == nil || !strings.Contains(err.Error(), "writable by every user") {
		t.Fatalf("reload: error %v, want the file refused", err)
	}
	if n := tokens.Len(); n != 4 {
		t.Fatalf("%d tokens after the refused reload, want the 4 in use", n)
	}
}
