package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pmd-dev/pmd/internal/testcert"
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

// TestServeRefusals: what serve refuses before it touches the data directory. A file
// that does not load is named by its flag, or by the environment variable that gave it
// (which the command line does not show).
func TestServeRefusals(t *testing.T) {
	good := writeTokens(t, "tokens:\n  - {name: a, sha256: "+sha256Hex("secret")+", scopes: [read]}\n")
	bad := writeTokens(t, "tokens:\n  - {name: a, sha256: secret, scopes: [read]}\n")
	tests := []struct {
		name string
		env  [][2]string // set in the environment
		args []string
		code int
		want string
	}{
		{"an open address without auth", nil, []string{"--addr", "0.0.0.0:0"}, exitUsage, "without --auth"},
		{"a bad token file", nil, []string{"--auth", bad}, exitTrouble, "--auth: " + bad + ":2: "},
		{"a missing token file", nil, []string{"--auth", good + ".missing"}, exitTrouble, "--auth: token file: open " + good + ".missing"},
		{"PMD_AUTH missing", [][2]string{{"PMD_AUTH", good + ".missing"}}, nil, exitTrouble, "PMD_AUTH: token file: open " + good + ".missing"},
		{"a flag over PMD_AUTH", [][2]string{{"PMD_AUTH", good}}, []string{"--auth", good + ".missing"}, exitTrouble, "--auth: token file: open " + good + ".missing"},
		{"a certificate without its key", nil, []string{"--tls-cert", good}, exitUsage, "--tls-cert and --tls-key go together"},
		{"PMD_TLS_CERT without a key", [][2]string{{"PMD_TLS_CERT", good}}, nil, exitUsage, "PMD_TLS_CERT and --tls-key go together"},
		{"a missing certificate", nil, []string{"--tls-cert", good + ".pem", "--tls-key", good + ".key"}, exitTrouble,
			"--tls-cert " + good + ".pem, --tls-key " + good + ".key: open "},
		{"PMD_TLS_CERT and PMD_TLS_KEY missing", [][2]string{{"PMD_TLS_CERT", good + ".pem"}, {"PMD_TLS_KEY", good + ".key"}}, nil, exitTrouble,
			"PMD_TLS_CERT " + good + ".pem, PMD_TLS_KEY " + good + ".key: open "},
		{"an origin with a path", nil, []string{"--allow-origin", "https://dash.example/app"}, exitUsage, "want scheme://host[:port]"},
		{"an origin with its default port", nil, []string{"--allow-origin", "https://dash.example:443"}, exitUsage, "browsers leave the default port out of Origin"},
		{"a host with a port", nil, []string{"--allow-host", "pmd.example:7070"}, exitUsage, `--allow-host "pmd.example:7070": give the name without a port`},
		{"PMD_ALLOW_ORIGIN with a path", [][2]string{{"PMD_ALLOW_ORIGIN", "https://dash.example/app"}}, nil, exitUsage, `PMD_ALLOW_ORIGIN "https://dash.example/app": want scheme://host[:port]`},
		{"a flag over PMD_ALLOW_ORIGIN", [][2]string{{"PMD_ALLOW_ORIGIN", "https://dash.example"}}, []string{"--allow-origin", "https://*.example"}, exitUsage, `--allow-origin "https://*.example": an origin is matched exactly`},
		{"PMD_ALLOW_HOST with a port", [][2]string{{"PMD_ALLOW_HOST", "pmd.example:7070"}}, nil, exitUsage, `PMD_ALLOW_HOST "pmd.example:7070": give the name without a port`},
		{"a flag over PMD_ALLOW_HOST", [][2]string{{"PMD_ALLOW_HOST", "pmd.example"}}, []string{"--allow-host", "10.0.0.1"}, exitUsage, `--allow-host "10.0.0.1": IP addresses are always served`},
		{"a missing CA file", nil, []string{"--tls-ca", good + ".missing"}, exitTrouble, "--tls-ca: open "},
		{"PMD_TLS_CA missing", [][2]string{{"PMD_TLS_CA", good + ".missing"}}, nil, exitTrouble, "PMD_TLS_CA: open "},
		{"a CA file without a certificate", nil, []string{"--tls-ca", good}, exitUsage, "--tls-ca " + good + ": no PEM certificate in it"},
		{"PMD_TLS_CA without a certificate", [][2]string{{"PMD_TLS_CA", good}}, nil, exitUsage, "PMD_TLS_CA " + good + ": no PEM certificate in it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, kv := range tt.env {
				t.Setenv(kv[0], kv[1])
			}
			data := filepath.Join(t.TempDir(), "data")
			args := append([]string{"serve", "--data", data, "--addr", "127.0.0.1:0"}, tt.args...)
			code, _, stderr := runPMD(t, context.Background(), args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, want %d, stderr lacks %q:\n%s", code, tt.code, tt.want, stderr)
			}
			if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the data directory was touched: stat: %v", err)
			}
		})
	}
}

func sha256Hex(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func writeTokens(t *testing.T, content string) string {
	t.Helper()
	return writeFile(t, "tokens.yaml", content)
}

// writeFile writes content to a file name of its own temporary directory, readable by
// its owner only, as token and secret files are, and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeWithAuthAndTLS runs the binary with a token file over HTTPS: requests need
// a token, the certificate's name is a Host it serves, and SIGHUP swaps the tokens.
func TestServeWithAuthAndTLS(t *testing.T) {
	bin := pmdBinary(t)
	certFile, keyFile, pool := testcert.Write(t, t.TempDir(), "pmd test")
	tokens := writeTokens(t, "tokens:\n  - {name: old, sha256: "+sha256Hex("old-secret")+", scopes: [write]}\n")
	d := startDaemon(t, bin, "--data", t.TempDir(), "--auth", tokens, "--tls-cert", certFile, "--tls-key", keyFile,
		"--allow-host", "pmd.alias", "--allow-origin", "https://dash.example")
	base := strings.Replace(d.base, "http://", "https://", 1)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var allowOrigin string // the last answer's Access-Control-Allow-Origin
	call := func(method, path, token, host string, origin ...string) int {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(`{"events":[{"type":"E"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if host != "" {
			req.Host = host
		}
		if len(origin) > 0 {
			req.Header.Set("Origin", origin[0])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		allowOrigin = resp.Header.Get("Access-Control-Allow-Origin")
		return resp.StatusCode
	}
	port := base[strings.LastIndex(base, ":")+1:]
	for _, tt := range []struct {
		method, path, token, host string
		status                    int
	}{
		{"GET", "/healthz", "", "", 200},
		{"GET", "/v1/streams", "", "", 401},
		{"GET", "/v1/streams", "wrong", "", 401},
		{"POST", "/v1/streams/s", "old-secret", "", 201},
		{"GET", "/v1/streams", "old-secret", "pmd.test:" + port, 200},
		{"GET", "/v1/streams", "old-secret", "elsewhere.test:" + port, 403},
		{"GET", "/v1/streams", "old-secret", "pmd.alias:" + port, 200}, // --allow-host
	} {
		if got := call(tt.method, tt.path, tt.token, tt.host); got != tt.status {
			t.Errorf("%s %s (token %q, host %q): %d, want %d", tt.method, tt.path, tt.token, tt.host, got, tt.status)
		}
	}
	// Browsers: the daemon's own https origin and --allow-origin's are served, others not.
	for _, tt := range []struct {
		origin, allowed string
		status          int
	}{
		{"https://127.0.0.1:" + port, "", 201},
		{"https://dash.example", "https://dash.example", 201},
		{"https://evil.example", "", 403},
		{"http://127.0.0.1:" + port, "", 403}, // not the scheme it serves
	} {
		if got := call("POST", "/v1/streams/s", "old-secret", "", tt.origin); got != tt.status || allowOrigin != tt.allowed {
			t.Errorf("POST with Origin %s: %d, Access-Control-Allow-Origin %q; want %d, %q", tt.origin, got, allowOrigin, tt.status, tt.allowed)
		}
	}
	if err := os.WriteFile(tokens, []byte("tokens:\n  - {name: new, sha256: "+sha256Hex("new-secret")+", scopes: [read]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A renewed certificate in the same files, for another name, taken by the same
	// SIGHUP: its name is served from then on, the old certificate's not.
	_, _, renewed := testcert.Write(t, filepath.Dir(certFile), "pmd renewed", "pmd.renewed")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.waitLog(t, "tokens reloaded")
	d.waitLog(t, "certificate reloaded")
	conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{RootCAs: renewed})
	if err != nil {
		t.Fatalf("the renewed certificate is not served: %v", err)
	}
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "pmd renewed" {
		t.Fatalf("served certificate %q", cn)
	}
	conn.Close()
	hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: renewed}}}
	if call("GET", "/v1/streams", "old-secret", "") != 401 || call("GET", "/v1/streams", "new-secret", "") != 200 ||
		call("POST", "/v1/streams/s", "new-secret", "") != 403 {
		t.Fatal("the reloaded token file is not in force")
	}
	if call("GET", "/v1/streams", "new-secret", "pmd.renewed:"+port) != 200 || call("GET", "/v1/streams", "new-secret", "pmd.test:"+port) != 403 ||
		call("GET", "/v1/streams", "new-secret", "pmd.alias:"+port) != 200 {
		t.Fatal("the Hosts served are not the renewed certificate's name and --allow-host's")
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("pmd exited with %v\n%s", err, d.logs)
	}
}

// TestServeInsecure: --insecure lets pmd serve an open address without --auth, which it
// refuses otherwise (TestServeRefusals).
func TestServeInsecure(t *testing.T) {
	bin := pmdBinary(t)
	d := startDaemon(t, bin, "--data", t.TempDir(), "--addr", "0.0.0.0:0", "--insecure")
	resp, err := http.Get(d.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %s", resp.Status)
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("pmd exited with %v\n%s", err, d.logs)
	}
}

// TestServeCacheReachesTheStore: --cache bounds the store's index cache, as /metrics shows,
// and without it the bound is the default 64 MiB.
func TestServeCacheReachesTheStore(t *testing.T) {
	bin := pmdBinary(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--cache", "16MiB"}, "pmd_index_cache_limit_bytes 1.6777216e+07\n"},
		{nil, "pmd_index_cache_limit_bytes 6.7108864e+07\n"},
	} {
		d := startDaemon(t, bin, append([]string{"--data", t.TempDir()}, tt.args...)...)
		resp, err := http.Get(d.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !strings.Contains(string(body), tt.want) {
			t.Errorf("serve %v: /metrics lacks %q (%v)", tt.args, tt.want, err)
		}
		if err := d.stop(t, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
}
