package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/cluster"
	"github.com/pmd-dev/pmd/config"
	"github.com/pmd-dev/pmd/server"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/spf13/cobra"
)

// clusterFlags are serve's flags for a node of a cluster (docs/cluster.md).
type clusterFlags struct {
	nodeID, raftAddr, join string
	raftAdvertise          string
	httpAdvertise          string
	expect                 int
	snapshotThreshold      uint64
	trailingLogs           uint64
	snapshotInterval       time.Duration
	heartbeat              time.Duration
	secretFile             string
	// secrets are the cluster secrets read from secretFile, one a line (a string keeps
	// serveConfig comparable).
	secrets string
	// httpWarning, set by checkHTTPAdvertise, is what a single node with no HTTP address
	// to advertise is told at start (startNode logs it).
	httpWarning string
	// secretWarning, set when the secret file is read, says that other users may read
	// it (startNode logs it).
	secretWarning string
	// open is set when --insecure let the Raft port serve, without a secret, those it
	// would otherwise be refused to (off loopback, or beside --auth).
	open bool
	// raftAddrEnv, set by check, is PMD_RAFT_ADDR if --raft-addr came from it, for
	// errors to name (raftAddrName).
	raftAddrEnv string
}

// raftAddrName is what gave --raft-addr, as errors name it: the flag, or PMD_RAFT_ADDR.
func (c *clusterFlags) raftAddrName() string {
	return cmp.Or(c.raftAddrEnv, "--raft-addr")
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.nodeID, "node-id", envString("PMD_NODE_ID", ""), "this node's id in a cluster; without it pmd is a single node (env PMD_NODE_ID)")
	fs.StringVar(&c.raftAddr, "raft-addr", envString("PMD_RAFT_ADDR", ""), "host:port for Raft and the cluster's own traffic (env PMD_RAFT_ADDR)")
	fs.StringVar(&c.raftAdvertise, "raft-advertise", "", "the address other nodes reach --raft-addr at, when not --raft-addr itself (a proxy, a NAT)")
	fs.StringVar(&c.httpAdvertise, "http-advertise", "", "the HOST:PORT other nodes reach this node's HTTP API at (followers forward to the leader's): needed when --addr listens on every interface (0.0.0.0:P, :P) and neither --raft-advertise nor --raft-addr names a host; without it such a node advertises that host with the --addr port")
	fs.StringVar(&c.join, "join", envString("PMD_JOIN", ""), "Raft addresses of the cluster's nodes, comma-separated: join them, or with --bootstrap-expect form a cluster with them (env PMD_JOIN)")
	fs.IntVar(&c.expect, "bootstrap-expect", 0, "form a new cluster once this many nodes of --join (this one included) are up")
	fs.Uint64Var(&c.snapshotThreshold, "raft-snapshot-threshold", 0, "Raft entries between snapshots (a snapshot is a position: cheap); 0 means 8192")
	fs.DurationVar(&c.snapshotInterval, "raft-snapshot-interval", 0, "how often Raft checks whether --raft-snapshot-threshold entries came since the last snapshot; 0 means 2m")
	fs.Uint64Var(&c.trailingLogs, "raft-trailing-logs", 0, "Raft entries kept after a snapshot: a node further behind catches up from the snapshot; 0 means 10240")
	fs.DurationVar(&c.heartbeat, "raft-heartbeat", 0, "Raft's heartbeat and election timeout, after about which a leader that is gone is replaced; 0 means 1s")
	fs.StringVar(&c.secretFile, "cluster-secret-file", envString("PMD_CLUSTER_SECRET_FILE", ""), "file of the cluster secret, the same on every node: every connection to --raft-addr must prove it knows it; text, one secret a line (e.g. hex from openssl rand -hex 32: random, not a passphrase), the first is this node's, the others are also accepted (a rotation); reloaded on SIGHUP; needed off loopback and with --auth (env PMD_CLUSTER_SECRET_FILE)")
}

// check checks the cluster flags, reads the cluster secret, and refuses a Raft port open
// to others without one: off loopback, or beside --auth (auth), unless insecure. named
// names a bad value as it was given: named("raft-addr", "PMD_RAFT_ADDR") is the
// variable if the value came from the environment, else the flag (serveFlags).
func (c *clusterFlags) check(auth string, insecure bool, named func(name, env string) string) error {
	c.raftAddrEnv = ""
	if n := named("raft-addr", "PMD_RAFT_ADDR"); !strings.HasPrefix(n, "--") {
		c.raftAddrEnv = n
	}
	switch {
	case c.nodeID == "":
		if c.raftAddr != "" || c.join != "" || c.expect != 0 || c.raftAdvertise != "" || c.secretFile != "" {
			why := "--raft-addr, --raft-advertise, --join, --bootstrap-expect and --cluster-secret-file need --node-id"
			var env []string // the variables among them that are set
			for _, v := range [][2]string{{"raft-addr", "PMD_RAFT_ADDR"}, {"join", "PMD_JOIN"}, {"cluster-secret-file", "PMD_CLUSTER_SECRET_FILE"}} {
				if n := named(v[0], v[1]); !strings.HasPrefix(n, "--") {
					env = append(env, n)
				}
			}
			if len(env) > 0 {
				why = strings.Join(env, " and ") + " set in the environment: " + why
			}
			return &usageError{why}
		}
		if c.heartbeat != 0 || c.snapshotThreshold != 0 || c.snapshotInterval != 0 || c.trailingLogs != 0 {
			return &usageError{"--raft-heartbeat, --raft-snapshot-threshold, --raft-snapshot-interval and --raft-trailing-logs tune a cluster node's Raft: they need --node-id"}
		}
		return nil
	case c.raftAddr == "":
		return &usageError{named("node-id", "PMD_NODE_ID") + " needs --raft-addr"}
	case c.expect < 0:
		return &usageError{"--bootstrap-expect must not be negative"}
	case c.expect > 1 && c.join == "":
		return &usageError{"--bootstrap-expect needs --join: the Raft addresses of the nodes to form the cluster with"}
	case c.heartbeat != 0 && c.heartbeat < 10*time.Millisecond:
		return &usageError{"--raft-heartbeat must be at least 10ms"}
	case len(c.nodeID) > cluster.MaxNodeIDLen:
		return &usageError{fmt.Sprintf("%s is %d bytes: a node id must be at most %d (each connection to another node carries it)", named("node-id", "PMD_NODE_ID"), len(c.nodeID), cluster.MaxNodeIDLen)}
	}
	if err := c.checkAddrs(named); err != nil {
		return err
	}
	if c.secretFile != "" {
		secrets, warning, err := readSecrets(named("cluster-secret-file", "PMD_CLUSTER_SECRET_FILE"), c.secretFile)
		if err != nil {
			return err
		}
		c.secrets = strings.Join(secrets, "\n")
		c.secretWarning = warning
		return nil
	}
	// Without a secret, anyone who reaches the Raft port reads every event (the records
	// that catch a node up) and changes the cluster (join, remove), whatever --auth says.
	c.open = auth != "" || !loopbackAddr(c.raftAddr)
	switch {
	case !c.open || insecure:
		return nil
	case auth != "":
		return &usageError{"refusing to serve Raft on " + c.raftAddr + " without --cluster-secret-file: --auth guards the HTTP API, but anyone who reaches the Raft port could read every event and change the cluster; give every node the same --cluster-secret-file FILE, or --insecure if the network is trusted"}
	default:
		return &usageError{"refusing to serve Raft on " + c.raftAddr + " without --cluster-secret-file: it is not a loopback address, so anyone who reaches it could read every event and change the cluster; give every node the same --cluster-secret-file FILE, or --insecure if the network is trusted"}
	}
}

// checkAddrs refuses, as the command line errors they are, a --raft-addr that names no
// address to listen on, and a --raft-advertise or a --join address that names none to
// reach: a node started with one would fail at its listen, or wait for ever for a node
// it cannot reach. A --raft-advertise of every interface (0.0.0.0:P, :P) is refused as
// --http-advertise's is: the other nodes would dial themselves. named is check's.
func (c *clusterFlags) checkAddrs(named func(name, env string) string) error {
	if err := checkHostPort(c.raftAddrName(), c.raftAddr, 0); err != nil {
		return err
	}
	if c.raftAdvertise != "" {
		if err := checkHostPort("--raft-advertise", c.raftAdvertise, 1); err != nil {
			return err
		}
		if host, _, _ := net.SplitHostPort(c.raftAdvertise); !specifiedHost(host) {
			return &usageError{fmt.Sprintf("--raft-advertise %q is not the address other nodes reach this node's Raft port at: it names no host, or one of every interface, which they would take for their own; give a host name or address (not 0.0.0.0 or ::)", c.raftAdvertise)}
		}
	}
	for _, a := range c.joinAddrs() {
		if err := checkHostPort(named("join", "PMD_JOIN"), a, 1); err != nil {
			return err
		}
	}
	return nil
}

// checkHostPort refuses addr, the value (or one of the values) of flag, unless it is
// HOST:PORT with a port from lowest to 65535; a port that is no number may be a
// service's name, which the listen or the dial looks up.
func checkHostPort(flag, addr string, lowest uint64) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return &usageError{fmt.Sprintf("%s %q is not HOST:PORT, such as 127.0.0.1:7081: %v", flag, addr, err)}
	}
	if n, err := strconv.ParseUint(port, 10, 64); err == nil && (n < lowest || n > 65535) {
		return &usageError{fmt.Sprintf("%s %q: port %d is out of range (%d to 65535)", flag, addr, n, lowest)}
	}
	return nil
}

// checkRaftListen listens on the Raft address addr, given as name (the flag or its
// variable), and closes the listener at once, so that an address the node cannot listen
// on (a port in use, a host not this machine's) fails the start before the data
// directory is opened. (The port may still be taken between this and the node's listen,
// which then fails before it makes its Raft state: a single node's directory that holds
// Raft state is refused as a member's from then on.)
func checkRaftListen(name, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on the Raft address %s (%s): %w", addr, name, err)
	}
	return ln.Close()
}

// joinAddrs is --join: the Raft addresses it names, in order.
func (c *clusterFlags) joinAddrs() []string {
	var join []string
	for _, a := range strings.Split(c.join, ",") {
		if a = strings.TrimSpace(a); a != "" {
			join = append(join, a)
		}
	}
	return join
}

// checkHTTPAdvertise checks --http-advertise (a host name or address, not of every
// interface, and a port 1-65535), and that a node whose --addr (addr) listens on every
// interface has an HTTP address to advertise (httpAdvertised): the other nodes forward
// to the leader's, and an unspecified one (0.0.0.0, ::) would send them to themselves.
// Such a node is refused when it joins or forms a cluster of several nodes (--join,
// --bootstrap-expect above 1); a single node, to which nothing forwards, is not (it ran
// so before this check): httpWarning says what it advertises, for startNode to log.
func (c *clusterFlags) checkHTTPAdvertise(addr string) error {
	c.httpWarning = ""
	if c.nodeID == "" {
		if c.httpAdvertise != "" {
			return &usageError{"--http-advertise needs --node-id"}
		}
		return nil
	}
	if c.httpAdvertise != "" {
		if why := badHTTPAdvertise(c.httpAdvertise); why != "" {
			return &usageError{fmt.Sprintf("--http-advertise %q is not the HOST:PORT other nodes reach this node's HTTP API at: %s; give a host name or address (not one of every interface, such as 0.0.0.0) and a port 1-65535", c.httpAdvertise, why)}
		}
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil || specifiedHost(host) {
		return nil // listening reports a malformed --addr
	}
	if _, ok := c.raftHost(); ok {
		return nil
	}
	why := fmt.Sprintf("--addr %s listens on every interface, and neither --raft-advertise nor --raft-addr names a host", addr)
	if strings.TrimSpace(c.join) == "" && c.expect <= 1 {
		c.httpWarning = why + ": this single node advertises its listener's unspecified address, which other nodes would take for their own; give --http-advertise HOST:PORT, the address they reach this node's HTTP API at, before other nodes join it"
		return nil
	}
	return &usageError{why + ": the other nodes would be told to forward to an address of every interface, which is their own; give --http-advertise HOST:PORT, the address they reach this node's HTTP API at"}
}

// badHTTPAdvertise says what is wrong with a, an --http-advertise, or "" if nothing is:
// it must be HOST:PORT with a port 1-65535 and a host that is an IP address (not an
// unspecified one) or a DNS name (labels of letters, digits and inner hyphens: no
// wildcard, which the server's Host allow-list would take as one).
func badHTTPAdvertise(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return "it is not HOST:PORT"
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || port[0] == '+' {
		return fmt.Sprintf("the port %q is not a number 1-65535", port)
	}
	if ip, err := netip.ParseAddr(host); err == nil { // a zone (fe80::1%eth0) included
		if ip.IsUnspecified() {
			return fmt.Sprintf("%s is an address of every interface", host)
		}
		return ""
	}
	if !dnsName(host) {
		return fmt.Sprintf("the host %q is neither an IP address nor a DNS name", host)
	}
	return ""
}

// dnsName reports whether host is a host name: at most 253 characters (a final dot
// aside), of dot-separated labels of 1-63 letters, digits, hyphens and underscores, none
// starting or ending with a hyphen. Underscores are not in DNS's host name rule, but
// resolvers take them and container names hold them (Docker Compose's proj_pmd_1), which
// nodes advertised before the check; what it keeps out is a wildcard (*) or junk that
// would reach the Host allow-list.
func dnsName(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// httpAdvertised is the HTTP address the node tells the others (and shows in
// /v1/cluster): --http-advertise; else ln, the address it listens on; but when ln is on
// every interface, the host of --raft-advertise, else of --raft-addr, with ln's port
// (checkHTTPAdvertise refused a node that has neither).
func (c *clusterFlags) httpAdvertised(ln net.Addr) string {
	if c.httpAdvertise != "" {
		return c.httpAdvertise
	}
	addr := ln.String()
	host, port, err := net.SplitHostPort(addr)
	if err != nil || specifiedHost(host) {
		return addr
	}
	if h, ok := c.raftHost(); ok {
		return net.JoinHostPort(h, port)
	}
	return addr
}

// raftHost is the host of --raft-advertise, else of --raft-addr, when it names one.
func (c *clusterFlags) raftHost() (string, bool) {
	a := c.raftAdvertise
	if a == "" {
		a = c.raftAddr
	}
	host, _, err := net.SplitHostPort(a)
	return host, err == nil && specifiedHost(host)
}

// specifiedHost reports whether host names a machine: not empty (every interface) and
// not an unspecified address (0.0.0.0, ::).
func specifiedHost(host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		return !ip.IsUnspecified()
	}
	return host != ""
}

// loopbackAddr reports whether host:port addr names only loopback addresses (an empty
// host is every interface; a name must resolve to loopback addresses only).
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return false
		}
	}
	return true
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func secretBytes(secrets []string) [][]byte {
	var out [][]byte
	for _, s := range secrets {
		out = append(out, []byte(s))
	}
	return out
}

// reloadSecretsOnHangup reads the cluster secret file again on each SIGHUP until ctx is
// done, for the node's connections from then on (a rotation, docs/cluster.md "Security").
// A file that does not load is logged and the secrets in use stay.
func reloadSecretsOnHangup(ctx context.Context, c clusterFlags, node *cluster.Node, logger *slog.Logger) {
	if c.secretFile == "" {
		return
	}
	onHangup(ctx, func() {
		secrets, warning, err := readSecrets("--cluster-secret-file", c.secretFile)
		if err == nil {
			err = node.SetSecrets(secretBytes(secrets))
		}
		if err != nil {
			logger.Error("cluster secrets not reloaded; the ones in use stay", "file", c.secretFile, "err", err)
			return
		}
		if warning != "" {
			logger.Warn("cluster: " + warning)
		}
		logger.Info("cluster secrets reloaded", "file", c.secretFile, "secrets", len(secrets))
	})
}

// readSecrets reads a cluster secret file: text, one secret a line, surrounding white
// space and blank lines ignored, the first the node's own. Raw random bytes are refused
// rather than split at their newline bytes and trimmed into other secrets. Its errors
// name the file as name (--cluster-secret-file, or PMD_CLUSTER_SECRET_FILE).
func readSecrets(name, file string) (secrets []string, warning string, err error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, "", &exitError{exitTrouble, fmt.Errorf("%s: %w", name, err)}
	}
	defer f.Close()
	// The mode of the file read, not of a path that may be replaced in between. Not a
	// refusal: secrets that Docker or Kubernetes mount are 0644 or 0444 by default.
	if fi, err := f.Stat(); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		warning = fmt.Sprintf("the cluster secret file %s may be read by other users (mode %#o): whoever reads it can read every event through the Raft port and change the cluster; chmod 600 %s", file, fi.Mode().Perm(), file)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, "", &exitError{exitTrouble, fmt.Errorf("%s: %w", name, err)}
	}
	if err := checkSecretText(b); err != nil {
		return nil, "", &usageError{fmt.Sprintf("%s %s: %v; the file must be text, one secret a line, e.g. hex from openssl rand -hex 32", name, file, err)}
	}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if len(line) < cluster.MinSecretLen {
			return nil, "", &usageError{fmt.Sprintf("%s %s: the secret on line %d is %d bytes; a secret must be at least %d (e.g. openssl rand -hex 32)", name, file, i+1, len(line), cluster.MinSecretLen)}
		}
		secrets = append(secrets, line)
	}
	if len(secrets) == 0 {
		return nil, "", &usageError{fmt.Sprintf("%s %s: no secret in it", name, file)}
	}
	return secrets, warning, nil
}

// checkSecretText says where b is not text: not UTF-8, or a control character other
// than the white space of line ends and tabs.
func checkSecretText(b []byte) error {
	line := 1
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Errorf("line %d holds a byte 0x%02x that is not UTF-8 text", line, b[i])
		case r == '\n':
			line++
		case r == '\r' || r == '\t':
		case unicode.IsControl(r):
			return fmt.Errorf("line %d holds the control character %U", line, r)
		}
		i += size
	}
	return nil
}

// startNode makes store a node of the cluster the flags name. Process managers run on
// the leader only: onLeader starts them there and stops them when leadership ends.
func startNode(ctx context.Context, c clusterFlags, dir, httpAddr string, store *pmd.Store, reg *prometheus.Registry, logger *slog.Logger, onLeader func(context.Context)) (*cluster.Node, error) {
	join := c.joinAddrs()
	if c.httpWarning != "" {
		logger.Warn("cluster: " + c.httpWarning)
	}
	if c.secretWarning != "" {
		logger.Warn("cluster: " + c.secretWarning)
	}
	if c.open {
		logger.Warn("cluster: the Raft port serves anyone who reaches it, without a cluster secret (--insecure): they can read every event and change the cluster", "raft_addr", c.raftAddr)
	}
	node, err := cluster.Start(ctx, cluster.Config{
		NodeID: c.nodeID, RaftAddr: c.raftAddr, RaftAdvertise: c.raftAdvertise, HTTPAddr: httpAddr, Join: join, BootstrapExpect: c.expect,
		Dir: dir, Store: store, Logger: logger, OnLeader: onLeader,
		HeartbeatTimeout: c.heartbeat, ElectionTimeout: c.heartbeat, LeaderLeaseTimeout: c.heartbeat / 2,
		SnapshotThreshold: c.snapshotThreshold, SnapshotInterval: c.snapshotInterval, TrailingLogs: c.trailingLogs,
		Secrets: secretBytes(splitLines(c.secrets)),
	})
	if err == nil {
		reg.MustRegister(newClusterCollector(node))
	}
	return node, err
}

// serverNode is the node as the server sees it (server.Node): a join refused with
// cluster.ErrJoinRules, which only an upgrade of the joining node's pmd changes, matches
// server.ErrConflict (409 conflict) rather than being taken for an outage (503).
type serverNode struct{ *cluster.Node }

func (n serverNode) Join(ctx context.Context, id, raftAddr string) error {
	return joinError(n.Node.Join(ctx, id, raftAddr))
}

// Remove is the node's, its refusals matching the server's errors as joinError's.
func (n serverNode) Remove(ctx context.Context, id string) error {
	return joinError(n.Node.Remove(ctx, id))
}

// joinError is err, matching server.ErrConflict as well when it is a change the cluster
// refuses as it stands (cluster.ErrJoinRules, ErrJoinRefused, ErrRemoveRefused), and
// server.ErrNotFound when it is the removal of no member (cluster.ErrUnknownNode).
func joinError(err error) error {
	switch {
	case errors.Is(err, cluster.ErrJoinRules), errors.Is(err, cluster.ErrJoinRefused), errors.Is(err, cluster.ErrRemoveRefused):
		return &matchError{err, server.ErrConflict}
	case errors.Is(err, cluster.ErrUnknownNode):
		return &matchError{err, server.ErrNotFound}
	}
	return err
}

// matchError is an error that matches is too, with its own text.
type matchError struct{ err, is error }

func (e *matchError) Error() string   { return e.err.Error() }
func (e *matchError) Unwrap() []error { return []error{e.err, e.is} }

// clusterStatus is GET /v1/cluster's answer, from the node's view.
func clusterStatus(node *cluster.Node) func(context.Context) (server.ClusterStatus, error) {
	return func(ctx context.Context) (server.ClusterStatus, error) {
		st, err := node.Status(ctx)
		if err != nil {
			return server.ClusterStatus{}, err
		}
		out := server.ClusterStatus{NodeID: st.Self.ID, LeaderID: st.Self.LeaderID,
			CommitIndex: st.Self.CommitIndex, AppliedIndex: st.Self.AppliedIndex, Nodes: []server.ClusterNode{}}
		leading := st.Self.State == "leader"
		for _, n := range st.Nodes {
			cn := server.ClusterNode{ID: n.ID, HTTPAddr: n.HTTPAddr, RaftAddr: n.RaftAddr, State: n.State}
			if n.Reachable {
				applied := n.AppliedIndex
				cn.AppliedIndex = &applied
				if leading {
					lag := st.Self.CommitIndex - min(applied, st.Self.CommitIndex)
					cn.Lag = &lag
				}
			}
			out.Nodes = append(out.Nodes, cn)
		}
		return out, nil
	}
}

// leaderProcesses runs the process managers of the config file on the leader only: a
// new set each time this node leads, stopped (and waited for) when it stops leading. It
// answers the server's process routes with the running set; a follower forwards those
// routes to the leader.
type leaderProcesses struct {
	store       *pmd.Store
	cfg         *config.Config
	logger      *slog.Logger
	failed      func()
	current     atomic.Pointer[processes]
	currentSubs atomic.Pointer[subscriptions]
	// leading is true while run runs and its ctx is not done: this node leads, and its
	// set is running, starting, or about to start again after a failure.
	leading atomic.Bool
	// metrics is the registry of the running set's metrics, gathered at /metrics
	// through Gather; nil while this node does not lead.
	metrics atomic.Pointer[prometheus.Registry]
}

// Gather gathers the metrics of the process managers and subscriptions running on this
// node, none when it does not lead: each leadership term has a new set, whose
// collectors could not be registered again with the daemon's registry, so the server
// gathers them through this (server.Options.MoreMetrics).
func (l *leaderProcesses) Gather() ([]*dto.MetricFamily, error) {
	if reg := l.metrics.Load(); reg != nil {
		return reg.Gather()
	}
	return nil, nil
}

func (l *leaderProcesses) run(ctx context.Context) {
	if l.cfg == nil || len(l.cfg.Processes)+len(l.cfg.Subscriptions) == 0 {
		return
	}
	l.leading.Store(true)
	// Not leading as soon as leadership goes (ctx), not only once the set has stopped,
	// which can take seconds: notRunning would say "starting" meanwhile. run returns
	// after that store, so that it cannot undo the next run's.
	left := make(chan struct{})
	stopLeft := context.AfterFunc(ctx, func() {
		l.leading.Store(false)
		close(left)
	})
	defer func() {
		if !stopLeft() {
			<-left
		}
		l.leading.Store(false)
	}()
	// A process manager or a subscription whose write is refused as unavailable (this
	// node no longer leads, or its disk is full) waits for the store to write again, until
	// ctx says leadership went; any other failure stops this set, and a new one starts
	// after a pause while this node still leads. A failure does not stop the daemon, as it
	// does on a single node: the cluster goes on.
	for ctx.Err() == nil {
		failed := make(chan struct{})
		var once sync.Once
		fail := func() { once.Do(func() { close(failed) }) }
		// A registry of the set's own (see Gather).
		reg := prometheus.NewRegistry()
		p, err := startProcesses(ctx, l.store, l.cfg, reg, l.logger, fail)
		if err != nil {
			l.logger.Error("cluster: process managers did not start on the leader", "err", err)
			l.failed()
			return
		}
		subs, err := startSubscriptions(ctx, l.store, l.cfg, reg, l.logger, fail)
		if err != nil {
			l.logger.Error("cluster: subscriptions did not start on the leader", "err", err)
			p.stop()
			l.failed()
			return
		}
		l.logger.Info("cluster: process managers and subscriptions started on the leader", "process_managers", p.count(), "subscriptions", subs.count())
		l.current.Store(p)
		l.currentSubs.Store(subs)
		l.metrics.Store(reg)
		select {
		case <-ctx.Done():
		case <-failed:
		}
		l.current.Store(nil)
		l.currentSubs.Store(nil)
		l.metrics.Store(nil)
		if err := errors.Join(p.stop(), subs.stop()); err != nil && ctx.Err() == nil {
			l.logger.Warn("cluster: process managers and subscriptions stopped; starting them again", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	l.logger.Info("cluster: process managers and subscriptions stopped: no longer the leader")
}

// stop has nothing to wait for: the node stops the process managers when it stops
// leading, and on Close.
func (l *leaderProcesses) stop() error { return nil }

func (l *leaderProcesses) count() int {
	if l.cfg == nil {
		return 0
	}
	return len(l.cfg.Processes)
}

// api is l as the server sees it; nil when the config has no process manager.
func (l *leaderProcesses) api() server.Processes {
	if l.count() == 0 {
		return nil
	}
	return l
}

var (
	errNotLeading = errors.New("the process managers and subscriptions run on the leader, and this node is not it (any more)")
	errStarting   = errors.New("this node leads, and its process managers and subscriptions are starting (again, after a failure: see its log): ask again in a moment")
)

// notRunning is why the set does not answer: this node does not lead, or leads and its
// set is not running yet. A leader answered errNotLeading while it started its set, and
// a follower relayed that answer.
func (l *leaderProcesses) notRunning() error {
	if l.leading.Load() {
		return &pmd.UnavailableError{Cause: errStarting}
	}
	return &pmd.UnavailableError{Cause: errNotLeading}
}

func (l *leaderProcesses) running() (*processes, error) {
	if p := l.current.Load(); p != nil {
		return p, nil
	}
	return nil, l.notRunning()
}

func (l *leaderProcesses) Managers(ctx context.Context) ([]server.Manager, error) {
	p, err := l.running()
	if err != nil {
		return nil, err
	}
	return p.Managers(ctx)
}

func (l *leaderProcesses) List(ctx context.Context, name, after string, limit int) ([]server.ProcessSummary, error) {
	p, err := l.running()
	if err != nil {
		return nil, err
	}
	return p.List(ctx, name, after, limit)
}

// ListProcesses implements server.ProcessLister.
func (l *leaderProcesses) ListProcesses(ctx context.Context, name string, q server.ListQuery) (server.ProcessListPage, error) {
	p, err := l.running()
	if err != nil {
		return server.ProcessListPage{}, err
	}
	return p.ListProcesses(ctx, name, q)
}

func (l *leaderProcesses) Process(ctx context.Context, name, id string) (server.Process, error) {
	p, err := l.running()
	if err != nil {
		return server.Process{}, err
	}
	return p.Process(ctx, name, id)
}

func (l *leaderProcesses) Holding(ctx context.Context, ev pmd.Event) ([]string, error) {
	p, err := l.running()
	if err != nil {
		return nil, nil // a follower's event page shows no process streams
	}
	return p.Holding(ctx, ev)
}

func (l *leaderProcesses) Parked(ctx context.Context, name string, q server.ParkedQuery) (server.ParkedPage, error) {
	p, err := l.running()
	if err != nil {
		return server.ParkedPage{}, err
	}
	return p.Parked(ctx, name, q)
}

var _ server.ProcessPager = (*leaderProcesses)(nil)

// ProcessPage implements server.ProcessPager: without it, a leader's process route
// read every event, command and delivery record of a process for one answer.
func (l *leaderProcesses) ProcessPage(ctx context.Context, name, id string, q server.ProcessQuery) (server.Process, error) {
	p, err := l.running()
	if err != nil {
		return server.Process{}, err
	}
	return p.ProcessPage(ctx, name, id, q)
}

func (l *leaderProcesses) Retry(ctx context.Context, name, id string, command uuid.UUID) error {
	p, err := l.running()
	if err != nil {
		return err
	}
	return p.Retry(ctx, name, id, command)
}

func (l *leaderProcesses) Skip(ctx context.Context, name, id string, command uuid.UUID) error {
	p, err := l.running()
	if err != nil {
		return err
	}
	return p.Skip(ctx, name, id, command)
}

// newClusterCmd is pmd cluster status|join|remove, against the daemon at --addr.
func newClusterCmd(g *globals, stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "show or change the cluster the daemon at --addr belongs to",
		// A word that is no subcommand comes here as an argument: it is named.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &usageError{fmt.Sprintf("unknown subcommand %q: want status, join or remove", args[0])}
			}
			return &usageError{"want a subcommand: status, join or remove"}
		},
	}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "the cluster's nodes, their state and Raft indexes, as the daemon sees them",
		Args:  wantArgs(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			st, err := c.Cluster(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdout, st)
			}
			fmt.Fprintf(stdout, "node %s, leader %s, commit index %d, applied index %d\n", st.NodeID, orNone(st.LeaderID), st.CommitIndex, st.AppliedIndex)
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tHTTP\tRAFT\tAPPLIED\tLAG")
			for _, n := range st.Nodes {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.State, orNone(n.HTTPAddr), n.RaftAddr, optUint(n.AppliedIndex), optUint(n.Lag))
			}
			return tw.Flush()
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print the answer as JSON")
	join := &cobra.Command{
		Use:   "join ID RAFT_ADDR",
		Short: "add the node ID, listening for Raft at RAFT_ADDR, to the cluster",
		Args:  wantArgs(2, 2, "ID RAFT_ADDR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNodeID(args[0]); err != nil {
				return err
			}
			if _, _, err := net.SplitHostPort(args[1]); err != nil {
				return &usageError{fmt.Sprintf("RAFT_ADDR %q is not HOST:PORT", args[1])}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.JoinNode(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "node %s joined\n", args[0])
			return err
		},
	}
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "remove the node ID from the cluster",
		Args:  wantArgs(1, 1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNodeID(args[0]); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.RemoveNode(cmd.Context(), args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "node %s removed\n", args[0])
			return err
		},
	}
	cmd.AddCommand(status, join, remove)
	return cmd
}

// checkNodeID refuses a node ID no node can have: the daemon would answer "no such
// route" for an empty one, which names nothing the operator wrote.
func checkNodeID(id string) error {
	if strings.TrimSpace(id) == "" {
		return &usageError{"ID must not be empty"}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func optUint(v *uint64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprint(*v)
}

// closeNodeFirst stops the node (Raft applies no more entries to the store) before the
// store closes.
func closeNodeFirst(node *cluster.Node, closeStore func() error, logger *slog.Logger) func() error {
	return func() error {
		if err := node.Close(); err != nil {
			logger.Warn("cluster: stopping the node", "err", err)
		}
		return closeStore()
	}
}

// clusterCollector exports the node's Raft figures to /metrics: its state, term, commit
// and applied indexes, the time since it last heard from the leader, and on the leader
// whether each member answers and its lag (entries behind the commit index). A member
// that does not answer within a second keeps a lag, counted from the applied index of
// its last answer to this leader, so that an alert on lag fires for a dead follower; one
// not heard from since this node leads has none, but is 0 in pmd_raft_member_reachable.
type clusterCollector struct {
	node raftNode
	// started is when this node started: a node that has heard from no leader since
	// counts its last contact from then (pmd_raft_last_contact_seconds).
	started time.Time

	mu sync.Mutex
	// applied is each member's applied index at its last answer, while this node leads.
	applied map[string]uint64
}

func newClusterCollector(node raftNode) *clusterCollector {
	return &clusterCollector{node: node, started: time.Now()}
}

// raftNode is what clusterCollector reads of a *cluster.Node.
type raftNode interface {
	Self() cluster.Info
	LastContact() time.Time
	RefusedConnections() uint64
	Status(ctx context.Context) (cluster.Status, error)
}

var (
	raftStateDesc     = prometheus.NewDesc("pmd_raft_state", "1 for this node's Raft state (leader, follower, candidate, shutdown; removed once the leader removed it from the cluster; halted once it met a Raft entry of apply rules newer than its pmd's).", []string{"state"}, nil)
	raftTermDesc      = prometheus.NewDesc("pmd_raft_term", "This node's current Raft term.", nil, nil)
	raftCommitDesc    = prometheus.NewDesc("pmd_raft_commit_index", "The last Raft index this node knows committed.", nil, nil)
	raftAppliedDesc   = prometheus.NewDesc("pmd_raft_applied_index", "The Raft index up to which this node's store is current (entries that change nothing in it, as no-ops, count as applied).", nil, nil)
	raftContactDesc   = prometheus.NewDesc("pmd_raft_last_contact_seconds", "Seconds since this follower last heard from the leader, or since it started when it has heard from none (0 on the leader).", nil, nil)
	raftLagDesc       = prometheus.NewDesc("pmd_raft_follower_lag_entries", "On the leader: how many entries each member is behind the commit index; a member that does not answer is counted from the applied index of its last answer to this leader.", []string{"node"}, nil)
	raftReachableDesc = prometheus.NewDesc("pmd_raft_member_reachable", "On the leader: 1 for each member that answered within a second, 0 for one that did not.", []string{"node"}, nil)
	raftRefusedDesc   = prometheus.NewDesc("pmd_raft_refused_connections_total", "Connections to the Raft address closed before they were served: without the cluster secret, with another one, without a header, or above the 64 not yet authenticated (or 8 from one host).", nil, nil)
)

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{raftStateDesc, raftTermDesc, raftCommitDesc, raftAppliedDesc, raftContactDesc, raftLagDesc, raftReachableDesc, raftRefusedDesc} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	self := c.node.Self()
	for _, st := range []string{"leader", "follower", "candidate", "shutdown", "removed", "halted"} {
		v := 0.0
		if self.State == st {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(raftStateDesc, prometheus.GaugeValue, v, st)
	}
	ch <- prometheus.MustNewConstMetric(raftTermDesc, prometheus.GaugeValue, float64(self.Term))
	ch <- prometheus.MustNewConstMetric(raftCommitDesc, prometheus.GaugeValue, float64(self.CommitIndex))
	ch <- prometheus.MustNewConstMetric(raftAppliedDesc, prometheus.GaugeValue, float64(self.AppliedIndex))
	// A node that has heard from no leader since it started (joining a cluster it
	// cannot reach, restarted cut off from it) is a follower without a leader: 0 here
	// would say it just heard from one, and no other series would show it.
	last := c.node.LastContact()
	if last.IsZero() {
		last = c.started
	}
	ch <- prometheus.MustNewConstMetric(raftContactDesc, prometheus.GaugeValue, time.Since(last).Seconds())
	ch <- prometheus.MustNewConstMetric(raftRefusedDesc, prometheus.CounterValue, float64(c.node.RefusedConnections()))
	c.mu.Lock()
	defer c.mu.Unlock()
	if self.State != "leader" {
		c.applied = nil // another leader's members may have moved on since
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.node.Status(ctx)
	if err != nil {
		return
	}
	applied := make(map[string]uint64, len(st.Nodes)) // members removed are forgotten
	for _, m := range st.Nodes {
		reachable := 0.0
		if m.Reachable {
			reachable, applied[m.ID] = 1, m.AppliedIndex
		} else if a, ok := c.applied[m.ID]; ok {
			applied[m.ID] = a
		}
		ch <- prometheus.MustNewConstMetric(raftReachableDesc, prometheus.GaugeValue, reachable, m.ID)
		if a, ok := applied[m.ID]; ok {
			lag := self.CommitIndex - min(a, self.CommitIndex)
			ch <- prometheus.MustNewConstMetric(raftLagDesc, prometheus.GaugeValue, float64(lag), m.ID)
		}
	}
	c.applied = applied
}

// leaderSubscriptions answers the server's subscription routes with the set running on
// this node while it leads; a follower forwards those routes to the leader.
type leaderSubscriptions struct{ l *leaderProcesses }

func (s leaderSubscriptions) count() int {
	if s.l.cfg == nil {
		return 0
	}
	return len(s.l.cfg.Subscriptions)
}

// api is s as the server sees it; nil when the config has no subscription.
func (s leaderSubscriptions) api() server.Subscriptions {
	if s.count() == 0 {
		return nil
	}
	return s
}

func (s leaderSubscriptions) stop() error { return nil } // see leaderProcesses.stop

func (s leaderSubscriptions) running() (*subscriptions, error) {
	if p := s.l.currentSubs.Load(); p != nil {
		return p, nil
	}
	return nil, s.l.notRunning()
}

func (s leaderSubscriptions) List(ctx context.Context) ([]server.Subscription, error) {
	p, err := s.running()
	if err != nil {
		return nil, err
	}
	return p.List(ctx)
}

func (s leaderSubscriptions) Subscription(ctx context.Context, name string) (server.SubscriptionDetail, error) {
	p, err := s.running()
	if err != nil {
		return server.SubscriptionDetail{}, err
	}
	return p.Subscription(ctx, name)
}

func (s leaderSubscriptions) Retry(ctx context.Context, name string, event uuid.UUID) error {
	p, err := s.running()
	if err != nil {
		return err
	}
	return p.Retry(ctx, name, event)
}

func (s leaderSubscriptions) Skip(ctx context.Context, name string, event uuid.UUID) error {
	p, err := s.running()
	if err != nil {
		return err
	}
	return p.Skip(ctx, name, event)
}
