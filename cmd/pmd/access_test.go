package main

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/testcert"
	"github.com/pmd-dev/pmd/server"
)

// TestServedHostNames: the Host names serve answers are the host name of --addr, the
// certificate's DNS names (a wildcard one covering exactly one label) and --allow-host's;
// any other name is refused (DNS rebinding).
func TestServedHostNames(t *testing.T) {
	certFile, keyFile, _ := testcert.Write(t, t.TempDir(), "pmd", "*.example.com", "pmd.test")
	f := accessFlags{tlsCert: certFile, tlsKey: keyFile, allowHost: "pmd.alias,*.lan.example"}
	acc, err := loadAccess(f, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h := server.New(store, server.Options{AllowHosts: acc.allowHosts("pmd.box:7070")})
	for _, tt := range []struct {
		host   string
		status int
	}{
		{"pmd.box:7070", 200},        // --addr's host name
		{"pmd.test", 200},            // the certificate's name
		{"pmd.example.com:443", 200}, // under its wildcard name
		{"PMD.Example.COM.", 200},
		{"a.pmd.example.com", 403}, // two labels under the wildcard
		{"example.com", 403},       // the wildcard's own domain
		{"pmd.alias", 200},         // --allow-host
		{"x.lan.example", 200},     // --allow-host's wildcard
		{"elsewhere.test", 403},
	} {
		req := httptest.NewRequestWithContext(context.Background(), "GET", "/v1/streams", nil)
		req.Host = tt.host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.status {
			t.Errorf("Host %s: %d %s, want %d", tt.host, rec.Code, rec.Body, tt.status)
		}
	}
}

// TestAllowFlagsThatNeverMatch: --allow-host and --allow-origin values no request could
// match are usage errors that say what to give instead.
func TestAllowFlagsThatNeverMatch(t *testing.T) {
	for _, tt := range []struct {
		flags accessFlags
		want  string // in the message; "" for none
	}{
		{accessFlags{allowHost: "pmd.example.com,*.example.org"}, ""},
		{accessFlags{allowHost: "pmd.example.com:7070"}, `--allow-host "pmd.example.com:7070": give the name without a port`},
		{accessFlags{allowHost: "https://pmd.example.com"}, "without a scheme or a path"},
		{accessFlags{allowHost: "10.0.0.1"}, "IP addresses are always served"},
		{accessFlags{allowHost: "[::1]"}, "IP addresses are always served"},
		{accessFlags{allowHost: "*"}, `the only wildcard is a leading "*."`},
		{accessFlags{allowHost: "pmd.*.example"}, `the only wildcard is a leading "*."`},
		{accessFlags{allowHost: "*.*.example"}, `the only wildcard is a leading "*."`},
		{accessFlags{allowOrigin: "https://dash.example,http://dash.example:8080"}, ""},
		{accessFlags{allowOrigin: "https://dash.example:443"}, `--allow-origin "https://dash.example:443": browsers leave the default port out of Origin: give https://dash.example`},
		{accessFlags{allowOrigin: "http://dash.example:80"}, "give http://dash.example"},
		{accessFlags{allowOrigin: "https://*.example"}, "without wildcards"},
		{accessFlags{allowOrigin: "dash.example"}, "want scheme://host[:port]"},
		{accessFlags{allowOrigin: "https://"}, "want scheme://host[:port]"},
	} {
		tt.flags.setFrom(func(flag, _ string) string { return "--" + flag })
		err := tt.flags.check()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.flags, err)
		case tt.want != "" && (err == nil || !containsUsage(err, tt.want)):
			t.Errorf("%+v: error %v, want a usage error containing %q", tt.flags, err, tt.want)
		}
	}
}

func containsUsage(err error, want string) bool {
	u, ok := err.(*usageError)
	return ok && strings.Contains(u.Error(), want)
}

// TestLoadAccessRefusesOpenAddr: a non-loopback --addr without --auth is a flag
// combination pmd refuses, a usage error (exit 2) as a Raft port without a secret is;
// with --auth or --insecure, or on loopback, it is served.
func TestLoadAccessRefusesOpenAddr(t *testing.T) {
	public := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 7070}
	for _, tt := range []struct {
		flags accessFlags
		addr  net.Addr
		want  string
	}{
		{accessFlags{}, public, "refusing to serve 10.0.0.7:7070 without --auth"},
		{accessFlags{insecure: true}, public, ""},
		{accessFlags{}, &net.TCPAddr{IP: net.IPv6loopback, Port: 7070}, ""},
	} {
		_, err := loadAccess(tt.flags, tt.addr)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v on %s: %v", tt.flags, tt.addr, err)
		case tt.want != "" && (err == nil || !containsUsage(err, tt.want)):
			t.Errorf("%+v on %s: error %#v, want a usage error containing %q", tt.flags, tt.addr, err, tt.want)
		}
	}
}
