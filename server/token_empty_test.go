package server

import (
	"strings"
	"testing"
)

// TestTokenFileRefusesTheEmptyToken: the SHA-256 of no bytes is what `printf %s "$token" |
// sha256sum` gives with $token unset; no request can send an empty token, so the entry
// would refuse its client with "unknown token" while the file loaded without a word.
func TestTokenFileRefusesTheEmptyToken(t *testing.T) {
	for _, h := range []string{sha(""), strings.ToUpper(sha(""))} {
		file := "tokens:\n  - {name: ci, sha256: " + sha("x") + ", scopes: [read]}\n  - {name: deploy, sha256: " + h + ", scopes: [admin]}\n"
		_, err := LoadTokens(writeFile(t, "tokens.yaml", file))
		if err == nil || !strings.Contains(err.Error(), ":3: tokens[1] (deploy): sha256 is that of an empty token") {
			t.Fatalf("error %v, want one naming the entry and the empty token", err)
		}
	}
}
