package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/cluster"
	"github.com/pmd-dev/pmd/config"
	"github.com/pmd-dev/pmd/internal/bytesize"
	"github.com/pmd-dev/pmd/internal/redact"
	"github.com/pmd-dev/pmd/server"
	"github.com/pmd-dev/pmd/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// serveConfig is what serve runs with, from flags and the environment.
type serveConfig struct {
	data, addr, config, logFormat string
	noSync                        bool
	leaveCluster                  bool
	maxBody                       int64
	memoryBudget                  int64
	cache                         int64
	grace                         time.Duration
	scavengeEvery                 time.Duration
	access                        accessFlags
	cluster                       clusterFlags
}

func serveFlags(args []string, stderr io.Writer) (serveConfig, error) {
	noSync, err := envBool("PMD_NO_SYNC", false)
	if err != nil {
		return serveConfig{}, err
	}
	var c serveConfig
	fs := newFlags("serve", stderr)
	fs.StringVar(&c.data, "data", envString("PMD_DATA", "./data"), "data directory (env PMD_DATA)")
	fs.StringVar(&c.addr, "addr", envString("PMD_ADDR", defaultAddr), "address to listen on (env PMD_ADDR)")
	fs.StringVar(&c.config, "config", envString("PMD_CONFIG", ""), "YAML file of process managers (env PMD_CONFIG)")
	fs.BoolVar(&c.noSync, "no-sync", noSync, "do not fsync: acknowledged writes can be lost in a power cut (env PMD_NO_SYNC)")
	fs.StringVar(&c.logFormat, "log-format", envString("PMD_LOG_FORMAT", "text"), "log format: text or json (env PMD_LOG_FORMAT)")
	maxBody := fs.String("max-body", envString("PMD_MAX_BODY", "16MiB"), "largest request body accepted, e.g. 1048576 (bytes) or 16MiB (env PMD_MAX_BODY)")
	memoryBudget := fs.String("memory-budget", envString("PMD_MEMORY_BUDGET", "256MiB"), "memory that request bodies being read, the JSON values parsed from them and pages being sent hold together, e.g. 1GiB; at least --max-body + 4MiB (env PMD_MEMORY_BUDGET)")
	grace := fs.String("shutdown-grace", envString("PMD_SHUTDOWN_GRACE", "30s"), "how long shutdown waits for requests in flight (env PMD_SHUTDOWN_GRACE)")
	scavenge := fs.String("scavenge-every", envString("PMD_SCAVENGE_EVERY", "24h"), "how often to reclaim the disk of dead and erased events; 0 never (env PMD_SCAVENGE_EVERY)")
	c.cluster.register(fs)
	fs.BoolVar(&c.leaveCluster, "leave-cluster", false, "serve a cluster node's data directory as a single node's from now on: removes its Raft state (without --node-id; remove the node from its cluster first)")
	if err := c.access.register(fs); err != nil {
		return c, err
	}
	cache := fs.String("cache", envString("PMD_CACHE", "64MiB"), "memory for index blocks, e.g. 256MiB or 1GB: this, not the store's size, sets pmd's memory (env PMD_CACHE)")
	if err := parse(fs, args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, &usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	if err := checkListenAddr(c.addr); err != nil {
		return c, err
	}
	// A bad value is named as it was given: a flag, or the environment variable a
	// service's unit file sets, which the command line then does not show.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	named := func(name, env string) string {
		if !given[name] && os.Getenv(env) != "" {
			return env
		}
		return "--" + name
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return c, &usageError{fmt.Sprintf("%s must be text or json, got %q", named("log-format", "PMD_LOG_FORMAT"), c.logFormat)}
	}
	if c.maxBody, err = bytesize.Parse(*maxBody); err != nil {
		return c, &usageError{named("max-body", "PMD_MAX_BODY") + ": " + err.Error()}
	}
	if c.memoryBudget, err = bytesize.Parse(*memoryBudget); err != nil {
		return c, &usageError{named("memory-budget", "PMD_MEMORY_BUDGET") + ": " + err.Error()}
	}
	if c.grace, err = time.ParseDuration(*grace); err != nil || c.grace < 0 {
		return c, &usageError{fmt.Sprintf("%s %q is not a duration of zero or more, such as 30s", named("shutdown-grace", "PMD_SHUTDOWN_GRACE"), *grace)}
	}
	if c.cache, err = bytesize.Parse(*cache); err != nil {
		return c, &usageError{named("cache", "PMD_CACHE") + ": " + err.Error()}
	}
	if c.scavengeEvery, err = time.ParseDuration(*scavenge); err != nil || c.scavengeEvery < 0 {
		return c, &usageError{fmt.Sprintf("%s %q is not a duration of zero or more, such as 24h", named("scavenge-every", "PMD_SCAVENGE_EVERY"), *scavenge)}
	}
	if err := c.cluster.check(c.access.auth, c.access.insecure, named); err != nil {
		return c, err
	}
	if err := c.cluster.checkHTTPAdvertise(c.addr); err != nil {
		return c, err
	}
	if c.leaveCluster && c.cluster.nodeID != "" {
		return c, &usageError{"--leave-cluster goes without --node-id: it makes the data directory a single node's"}
	}
	c.access.setFrom(named)
	return c, c.access.check()
}

// checkListenAddr refuses an --addr that names no address to listen on, a port missing
// or out of range, or a URL (which the client commands take, also from the PMD_ADDR
// serve reads), as the command line error it is (exit 2). An address that is well
// formed but cannot be listened on (a busy port, a host not this one) is the listen's
// error, exit 3.
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return &usageError{fmt.Sprintf("--addr %q is not HOST:PORT, such as 127.0.0.1:7070 (env PMD_ADDR): %v", addr, err)}
	}
	// A port that is no number may be a service's name (":http"), which the listen looks up.
	if n, err := strconv.ParseUint(port, 10, 64); err == nil && n > 65535 {
		return &usageError{fmt.Sprintf("--addr %q: port %d is out of range (0 to 65535)", addr, n)}
	}
	return nil
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// SIGHUP is caught from the start to the end: uncaught, it would end the daemon at
	// once, during a long start or shutdown too, or when there is nothing to reload.
	hup := catchHangups()
	defer hup.stop()
	c, err := serveFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(c.logFormat, stderr)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	ctx = hup.run(ctx, logger)

	var cfg *config.Config
	if c.config != "" {
		cfg, err = loadConfig(c.config)
		if errors.As(err, new(config.Errors)) {
			return fmt.Errorf("the config file has problems; not starting:\n%w", err)
		}
		if err != nil {
			return err
		}
	}

	// Bind the port before touching the data directory: a pmd started on a busy port
	// fails without creating the directory, opening the store or starting its process
	// managers. Serve closes the listener; the deferred Close covers failures before it.
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return &exitError{exitTrouble, fmt.Errorf("listen on %s: %w", c.addr, err)}
	}
	defer ln.Close()
	acc, err := loadAccess(c.access, ln.Addr())
	if err != nil {
		return &exitError{exitTrouble, err}
	}
	// The Host names served: those of --addr and --allow-host, and the one the node
	// advertises to the cluster, which the other nodes forward to.
	allowHosts := func() []string {
		hosts := acc.allowHosts(c.addr)
		if c.cluster.nodeID != "" {
			if h, _, err := net.SplitHostPort(c.cluster.httpAdvertised(ln.Addr())); err == nil && net.ParseIP(h) == nil {
				hosts = append(hosts, h)
			}
		}
		return hosts
	}
	// The token file and the certificate reload from now on; a certificate's names are
	// served once the server is.
	var srvP atomic.Pointer[server.Server]
	acc.reloadOnHangup(ctx, logger, func() {
		if srv := srvP.Load(); srv != nil {
			srv.SetAllowHosts(allowHosts())
		}
	})

	// The first SIGINT or SIGTERM shuts down gracefully; a second one exits at once.
	// Exiting at once is safe: the log only ever acknowledges what is on disk, and
	// the next start repairs a torn tail and replays the log past the index's durable point.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case sig := <-sigs:
			stop() // first: a SIGHUP after the line below finds the daemon shutting down
			logger.Info("shutting down: finishing requests in flight, then closing the store; signal again to exit at once", "signal", sig.String())
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			logger.Warn("exiting at once; the log is safe, the next start replays it", "signal", sig.String())
			os.Exit(exitFailed)
		case <-done:
		}
	}()

	if c.cluster.nodeID != "" {
		if err := checkRaftListen(c.cluster.raftAddrName(), c.cluster.raftAddr); err != nil {
			return &exitError{exitTrouble, err}
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	commits := server.NewCommits(reg)
	store, err := pmd.Open(c.data, storeOptions(c, logger, commits.Observe))
	if err != nil {
		return &exitError{exitTrouble, lockedErr(c.data, err, ", or serve another --data")}
	}
	if c.leaveCluster {
		// After the open, which holds the directory's lock: a running member's data
		// directory is refused above with its Raft state in place.
		if err := cluster.Leave(c.data, c.noSync); err != nil {
			return &exitError{exitTrouble, errors.Join(err, store.Close())}
		}
		logger.Warn("cluster: the data directory left its cluster (--leave-cluster): its Raft state is removed, and it is a single node's from its first write", "data", c.data)
	}
	if c.cluster.nodeID == "" && !c.leaveCluster {
		// A single node's writes carry no Raft index: in a member's data directory they
		// would make Raft apply its entries again when it rejoins (cluster.MemberData).
		if err := cluster.MemberData(c.data, store); err != nil {
			return &exitError{exitTrouble, errors.Join(fmt.Errorf("%s: %w: start it with --node-id as the member it is; "+
				"to take it out of its cluster for good, remove it from the cluster (pmd cluster remove ID), stop it, "+
				"and start it with --leave-cluster until its first write as a single node", c.data, err), store.Close())}
		}
	}
	closeStore := func() error {
		start := time.Now()
		if err := store.Close(); err != nil {
			return fmt.Errorf("close the store: %w", err)
		}
		logger.Info("store closed, index flushed", "took", time.Since(start).Round(time.Millisecond))
		return nil
	}
	if err := keepProcessStreams(store, cfg); err != nil {
		return errors.Join(err, closeStore())
	}

	procFailed := func() {
		logger.Error("shutting down: a process manager failed, and pmd does not run without it")
		stop()
	}
	var procs interface {
		api() server.Processes
		count() int
		stop() error
	}
	var node *cluster.Node
	var lp *leaderProcesses
	if c.cluster.nodeID == "" {
		p, err := startProcesses(ctx, store, cfg, reg, logger, procFailed)
		if err != nil {
			return errors.Join(err, closeStore())
		}
		procs = p
	} else {
		// A node of a cluster: writes go through Raft; process managers and subscriptions
		// run on the leader.
		lp = &leaderProcesses{store: store, cfg: cfg, logger: logger, failed: procFailed}
		procs = lp
		// The secrets reload once the node is up; a SIGHUP before says so.
		nodeStarting, nodeStarted := context.WithCancel(ctx)
		if c.cluster.secretFile != "" {
			onHangup(nodeStarting, func() {
				logger.Warn("cluster secrets not reloaded: the node is starting; send SIGHUP again once pmd serves", "file", c.cluster.secretFile)
			})
		}
		node, err = startNode(ctx, c.cluster, c.data, c.cluster.httpAdvertised(ln.Addr()), store, reg, logger, lp.run)
		nodeStarted()
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, context.Canceled) {
				// Stopped as asked, during the start: as graceful as any other stop.
				logger.Info("cluster: the node did not start: stopped while starting", "err", err)
				if err := closeStore(); err != nil {
					return err
				}
				logger.Info("pmd stopped")
				return nil
			}
			return &exitError{exitTrouble, errors.Join(err, closeStore())}
		}
		closeStore = closeNodeFirst(node, closeStore, logger)
	}

	var subs interface {
		api() server.Subscriptions
		count() int
		stop() error
	}
	if lp != nil {
		subs = leaderSubscriptions{lp}
	} else {
		s, err := startSubscriptions(ctx, store, cfg, reg, logger, func() {
			logger.Error("shutting down: a subscription failed, and pmd does not run without it")
			stop()
		})
		if err != nil {
			return errors.Join(err, procs.stop(), closeStore())
		}
		subs = s
	}

	if acc.tokens != nil {
		// Every node checks, followers too: they authorize before forwarding.
		acc.tokens.SetOwner(streamOwner(cfg))
	}
	opts := server.Options{
		MaxBody:       c.maxBody,
		MemoryBudget:  c.memoryBudget,
		Subscriptions: subs.api(),
		Processes:     procs.api(),
		Commits:       commits,
		Browser:       web.Handler(),
		Registry:      reg,
		Logger:        logger,
		Tokens:        acc.tokens,
		AllowOrigins:  splitList(c.access.allowOrigin),
		AllowHosts:    allowHosts(),
	}
	if node != nil {
		opts.Node, opts.Cluster, opts.ForwardTLS = serverNode{node}, clusterStatus(node), acc.forward
		opts.MoreMetrics = lp
	}
	srv := server.New(store, opts)
	// A certificate reloaded since opts: its names are set under certHosts, so that a
	// reload running now either finds srv or is done before the names are read.
	acc.certHosts.Lock()
	srvP.Store(srv)
	srv.SetAllowHosts(allowHosts())
	acc.certHosts.Unlock()
	if node != nil {
		reloadSecretsOnHangup(ctx, c.cluster, node, logger)
	}
	waitScavenges := scheduleScavenges(ctx, store, c.scavengeEvery, logger)
	writesStopped := stopWhenWritesStop(ctx, store.WritesStopped(), store.Problems, logger, stop)
	url := acc.scheme() + "://" + ln.Addr().String()
	hup.serving() // before the line that says so: a SIGHUP after it finds the daemon serving
	logger.Info("pmd serving", "url", url, "addr", ln.Addr().String(), "data", c.data,
		"config", c.config, "process_managers", procs.count(), "subscriptions", subs.count(), "no_sync", c.noSync, "last_position", store.LastPosition(),
		"auth", c.access.auth, "tls", c.access.tlsCert != "")

	serveErr := srv.Serve(ctx, acc.listener(ln), c.grace)
	stop()
	waitScavenges()
	// HTTP is drained: no append is in flight. Stop the process managers and the
	// subscriptions (they write their resume checkpoints and positions), then close the
	// store (it flushes the index).
	procErr, subErr := procs.stop(), subs.stop()
	err = errors.Join(writesStopped(), serveErr, procErr, subErr, closeStore())
	if err == nil {
		logger.Info("pmd stopped")
	}
	return err
}

// stopWhenWritesStop stops the daemon (stop) once the store stopped writing until a
// restart (stopped is pmd.Store.WritesStopped; problems, Store.Problems, says why): a
// process manager or a subscription would fail on its next write and stop it, but a
// daemon running none would serve on, degraded, until someone restarted it, which a
// supervisor that restarts what exits (systemd's Restart=on-failure) never does. The
// returned reason waits until ctx ends and says why the store stopped the daemon, or nil.
func stopWhenWritesStop(ctx context.Context, stopped <-chan struct{}, problems func() []string, logger *slog.Logger, stop func()) (reason func() error) {
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-stopped:
			p := problems()
			err = fmt.Errorf("the store stopped writing until a restart: %s", strings.Join(p, "; "))
			logger.Error("shutting down: the store stopped writing until a restart, which starts it writing again", "problems", p)
			stop()
		case <-ctx.Done():
		}
	}()
	return func() error {
		<-done
		return err
	}
}

// storeOptions is how serve opens the store: what its flags say, with its logger and
// the observer of group commits for the metrics.
func storeOptions(c serveConfig, logger *slog.Logger, onCommit func(pmd.CommitInfo)) pmd.Options {
	return pmd.Options{NoSync: c.noSync, CacheSize: c.cache, Logger: logger, OnCommit: onCommit}
}

// loadConfig reads and checks the config file at path. A file that cannot be read
// means the command cannot run (exit 3, like a missing token file); one that is read
// but has problems is refused (exit 1).
func loadConfig(path string) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &exitError{exitTrouble, fmt.Errorf("cannot read the config file: %w", err)}
	}
	return config.Parse(path, data)
}

func checkConfigCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check-config", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{"want exactly one argument: the config file"}
	}
	cfg, err := loadConfig(fs.Arg(0))
	var problems config.Errors
	if errors.As(err, &problems) {
		return fmt.Errorf("%s has %d problem(s):\n%w", fs.Arg(0), len(problems), err) // one a line
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok, %d process manager(s)\n", cfg.Path, len(cfg.Processes))
	for _, p := range cfg.Processes {
		types := make([]string, len(p.Issues))
		for i, c := range p.Issues {
			types[i] = c.Type
		}
		line := fmt.Sprintf("  %s: handles %v by %s, complete when %s, issues %s", p.Name, p.Handles, p.CorrelateBy, p.CompleteWhen.Source, strings.Join(types, ", "))
		if p.Deadline != nil {
			line += fmt.Sprintf(", after %s issues %s", p.Deadline.After, p.Deadline.Issue.Type)
		}
		if p.Deliver != nil {
			line += ", delivers to " + redact.URL(p.Deliver.Webhook)
		}
		fmt.Fprintln(stdout, line)
	}
	if n := len(cfg.Subscriptions); n > 0 {
		fmt.Fprintf(stdout, "%d subscription(s)\n", n)
	}
	for _, s := range cfg.Subscriptions {
		fmt.Fprintf(stdout, "  %s: %s, delivers to %s\n", s.Name, s.Describe(), redact.URL(s.Deliver.Webhook))
	}
	return nil
}
