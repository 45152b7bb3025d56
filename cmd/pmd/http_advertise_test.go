package main

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClusterHTTPAdvertise: the HTTP address a cluster node advertises (to the other
// nodes, which forward to the leader's, and in /v1/cluster): --http-advertise; else the
// listener's address; else, when the listener is on every interface (--addr 0.0.0.0:P or
// :P), the host of --raft-advertise or --raft-addr with the listener's port. A node on
// every interface with no host to advertise is refused at start when it joins or forms a
// cluster of several nodes (--join, --bootstrap-expect above 1), which would forward to
// it; a single node advertises its listener's address with a warning (nothing forwards
// to it). An --http-advertise that is not a host name or address and a port 1-65535 is
// refused.
func TestClusterHTTPAdvertise(t *testing.T) {
	listener := func(s string) net.Addr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		name     string
		flags    clusterFlags
		addr     string // --addr
		listened string // the listener's address
		want     string // advertised; "" for a refusal
		refusal  string
		warning  string // what the node logs at start, if anything
	}{
		{"a listener on one address", clusterFlags{nodeID: "n1", raftAddr: "10.0.0.5:7081"}, "10.0.0.5:7070", "10.0.0.5:7070", "10.0.0.5:7070", "", ""},
		{"every IPv4 interface: the Raft host", clusterFlags{nodeID: "n1", raftAddr: "10.0.0.5:7081"}, "0.0.0.0:7070", "[::]:7070", "10.0.0.5:7070", "", ""},
		{"every interface: the Raft host", clusterFlags{nodeID: "n1", raftAddr: "10.0.0.5:7081"}, ":0", "[::]:40123", "10.0.0.5:40123", "", ""},
		{"every interface: the advertised Raft host", clusterFlags{nodeID: "n1", raftAddr: ":7081", raftAdvertise: "pmd1.internal:17081"}, ":7070", "[::]:7070", "pmd1.internal:7070", "", ""},
		{"an IPv6 Raft host", clusterFlags{nodeID: "n1", raftAddr: "[fd00::5]:7081"}, "[::]:7070", "[::]:7070", "[fd00::5]:7070", "", ""},
		{"--http-advertise", clusterFlags{nodeID: "n1", raftAddr: "10.0.0.5:7081", httpAdvertise: "pmd1.example.com:443"}, ":7070", "[::]:7070", "pmd1.example.com:443", "", ""},
		{"--http-advertise an IPv4 address", clusterFlags{nodeID: "n1", raftAddr: ":7081", httpAdvertise: "10.0.0.5:7070"}, ":7070", "[::]:7070", "10.0.0.5:7070", "", ""},
		{"--http-advertise an IPv6 address", clusterFlags{nodeID: "n1", raftAddr: ":7081", httpAdvertise: "[fd00::5]:65535"}, ":7070", "[::]:7070", "[fd00::5]:65535", "", ""},
		{"--http-advertise a one-label name", clusterFlags{nodeID: "n1", raftAddr: ":7081", httpAdvertise: "pmd-1:1"}, ":7070", "[::]:7070", "pmd-1:1", "", ""},
		// Names resolvers take that DNS's host name rule does not: a container's (Docker
		// Compose's proj_pmd_1), a fully qualified one with its final dot, a link-local
		// address with its zone. Nodes advertised them before the check.
		{"--http-advertise a name with an underscore", clusterFlags{nodeID: "n1", raftAddr: ":7081", httpAdvertise: "proj_pmd_1:7070"}, ":7070", "[::]:7070", "proj_pmd_1:7070", "", ""},
		{"--http-advertise a name with a final dot", clusterFlags{nodeID: "n1", raftAddr: ":7081", httpAdvertise: "pmd1.example.com.:7070"}, ":7070", "[::]:7070", "pmd1.example.com.:7070", "", ""},
		{"--http-advertise an IPv6 address with a zone", clusterFlags{nodeID: "n1", raftAddr: ":7081", httpAdvertise: "[fe80::1%eth0]:7070"}, ":7070", "[::]:7070", "[fe80::1%eth0]:7070", "", ""},
		{"no host anywhere, a single node: a warning", clusterFlags{nodeID: "n1", raftAddr: ":7081"}, "0.0.0.0:7070", "[::]:7070", "[::]:7070", "",
			"--addr 0.0.0.0:7070 listens on every interface, and neither --raft-advertise nor --raft-addr names a host"},
		{"no host anywhere, --bootstrap-expect 1: a warning", clusterFlags{nodeID: "n1", raftAddr: ":7081", expect: 1}, ":7070", "[::]:7070", "[::]:7070", "",
			"--addr :7070 listens on every interface"},
		{"no host anywhere, joining", clusterFlags{nodeID: "n1", raftAddr: ":7081", join: "10.0.0.6:7081"}, "0.0.0.0:7070", "", "",
			"--addr 0.0.0.0:7070 listens on every interface, and neither --raft-advertise nor --raft-addr names a host", ""},
		{"no host anywhere, forming a cluster of three", clusterFlags{nodeID: "n1", raftAddr: ":7081", join: "10.0.0.6:7081,10.0.0.7:7081", expect: 3}, ":7070", "", "",
			"give --http-advertise HOST:PORT", ""},
		{"--http-advertise without a host", clusterFlags{nodeID: "n1", raftAddr: "10.0.0.5:7081", httpAdvertise: ":7070"}, ":7070", "", "",
			`--http-advertise ":7070" is not`, ""},
		{"--http-advertise on every interface", clusterFlags{nodeID: "n1", raftAddr: "10.0.0.5:7081", httpAdvertise: "0.0.0.0:7070"}, ":7070", "", "",
			`--http-advertise "0.0.0.0:7070" is not`, ""},
		{"--http-advertise without a port", clusterFlags{nodeID: "n1", raftAddr: "10.0.0.5:7081", httpAdvertise: "pmd1"}, ":7070", "", "",
			`--http-advertise "pmd1" is not`, ""},
		{"--http-advertise a wildcard", clusterFlags{nodeID: "n1", raftAddr: "10.0.0.5:7081", httpAdvertise: "*.evil.example:7070"}, ":7070", "", "",
			`--http-advertise "*.evil.example:7070" is not`, ""},
		{"--http-advertise a port not a number", clusterFlags{nodeID: "n1", raftAddr: "10.0.0.5:7081", httpAdvertise: "pmd1:abc"}, ":7070", "", "",
			`--http-advertise "pmd1:abc" is not`, ""},
		{"--http-advertise a port above 65535", clusterFlags{nodeID: "n1", raftAddr: "10.0.0.5:7081", httpAdvertise: "pmd1:99999"}, ":7070", "", "",
			`--http-advertise "pmd1:99999" is not`, ""},
		{"--http-advertise port 0", clusterFlags{nodeID: "n1", raftAddr: "10.0.0.5:7081", httpAdvertise: "pmd1:0"}, ":7070", "", "",
			`--http-advertise "pmd1:0" is not`, ""},
		{"--http-advertise a path", clusterFlags{nodeID: "n1", raftAddr: "10.0.0.5:7081", httpAdvertise: "pmd1/x:7070"}, ":7070", "", "",
			`--http-advertise "pmd1/x:7070" is not`, ""},
		{"--http-advertise a label starting with a hyphen", clusterFlags{nodeID: "n1", raftAddr: "10.0.0.5:7081", httpAdvertise: "-pmd1.example:7070"}, ":7070", "", "",
			`--http-advertise "-pmd1.example:7070" is not`, ""},
		{"--http-advertise an empty label", clusterFlags{nodeID: "n1", raftAddr: "10.0.0.5:7081", httpAdvertise: "pmd1..example:7070"}, ":7070", "", "",
			`--http-advertise "pmd1..example:7070" is not`, ""},
		{"--http-advertise without --node-id", clusterFlags{httpAdvertise: "pmd1:7070"}, ":7070", "", "",
			"--http-advertise needs --node-id", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.flags.checkHTTPAdvertise(tt.addr)
			if tt.refusal != "" {
				var usage *usageError
				if !errors.As(err, &usage) || !strings.Contains(err.Error(), tt.refusal) {
					t.Fatalf("check: %v, want a usage error saying %q", err, tt.refusal)
				}
				return
			}
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			if tt.warning == "" && tt.flags.httpWarning != "" || !strings.Contains(tt.flags.httpWarning, tt.warning) {
				t.Fatalf("warning %q, want one saying %q", tt.flags.httpWarning, tt.warning)
			}
			if got := tt.flags.httpAdvertised(listener(tt.listened)); got != tt.want {
				t.Fatalf("advertised %q, want %q", got, tt.want)
			}
		})
	}
}

// TestServeRefusesAClusterNodeWithNoHTTPAddressToAdvertise: pmd serve on every interface
// with a Raft address on every interface too, and no --http-advertise, stops before it
// touches the data directory, saying what to give, when it joins a cluster (the others
// would forward to it); a single node, to which nothing forwards, starts, with a warning.
func TestServeRefusesAClusterNodeWithNoHTTPAddressToAdvertise(t *testing.T) {
	t.Run("joining", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "data")
		code, _, stderr := runPMD(t, context.Background(), "serve", "--data", data, "--addr", "0.0.0.0:0",
			"--node-id", "n1", "--raft-addr", ":0", "--join", "127.0.0.1:1", "--insecure")
		if want := "give --http-advertise HOST:PORT"; code != exitUsage || !strings.Contains(stderr, want) {
			t.Fatalf("exit %d, want %d saying %q:\n%s", code, exitUsage, want, stderr)
		}
		if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the data directory was touched: stat: %v", err)
		}
	})
	t.Run("a single node", func(t *testing.T) {
		d := startDaemon(t, pmdBinary(t), "--data", t.TempDir(), "--addr", "0.0.0.0:0", "--node-id", "n1", "--raft-addr", ":0", "--insecure")
		d.waitLog(t, "cluster: --addr 0.0.0.0:0 listens on every interface")
		d.waitLog(t, "cluster: leading")
	})
}

// TestServeAdvertisesAnHTTPAddressOthersReach: a cluster node started with --addr
// 0.0.0.0:0 shows in /v1/cluster the host of its --raft-addr with its HTTP port, not the
// unspecified address, which other machines would take for themselves; with
// --http-advertise, that address, whose host name the node then serves (the others
// forward to it with that Host).
func TestServeAdvertisesAnHTTPAddressOthersReach(t *testing.T) {
	bin := pmdBinary(t)
	for _, tc := range []struct {
		name string
		args []string
		want func(port string) string
	}{
		{"the Raft host", nil, func(port string) string { return "127.0.0.1:" + port }},
		{"--http-advertise", []string{"--http-advertise", "pmd1.example.com:7443"}, func(string) string { return "pmd1.example.com:7443" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--data", t.TempDir(), "--addr", "0.0.0.0:0", "--node-id", "n1", "--raft-addr", "127.0.0.1:0", "--insecure"}, tc.args...)
			d := startDaemon(t, bin, args...)
			d.waitLog(t, "cluster: leading")
			_, port, err := net.SplitHostPort(strings.TrimPrefix(d.base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want(port)
			req, err := http.NewRequest("GET", d.base+"/v1/cluster", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = want
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var st struct {
				Nodes []struct {
					ID       string `json:"id"`
					HTTPAddr string `json:"http_addr"`
				} `json:"nodes"`
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /v1/cluster with Host %s: %s", want, resp.Status)
			}
			if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
				t.Fatal(err)
			}
			if len(st.Nodes) != 1 || st.Nodes[0].HTTPAddr != want {
				t.Fatalf("/v1/cluster nodes %+v, want n1 at %s", st.Nodes, want)
			}
		})
	}
}
