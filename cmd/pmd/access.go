package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/pmd-dev/pmd/server"
)

// accessFlags are serve's flags of contract section 10: tokens, TLS, and what a browser
// may reach.
type accessFlags struct {
	auth, tlsCert, tlsKey string
	tlsCA                 string // CAs a cluster node trusts when it forwards to the leader
	insecure              bool
	// allowOrigin and allowHost are comma-separated lists (strings keep serveConfig
	// comparable).
	allowOrigin, allowHost string
	// authFrom, tlsCertFrom, tlsKeyFrom, tlsCAFrom, allowOriginFrom and allowHostFrom
	// name where each file or list was given, its flag or the environment variable that
	// set it (setFrom), for errors: the command line of a service does not show its
	// environment.
	authFrom, tlsCertFrom, tlsKeyFrom, tlsCAFrom string
	allowOriginFrom, allowHostFrom               string
}

// setFrom names where each file and list was given, with serveFlags' named.
func (a *accessFlags) setFrom(named func(flag, env string) string) {
	a.authFrom = named("auth", "PMD_AUTH")
	a.tlsCertFrom = named("tls-cert", "PMD_TLS_CERT")
	a.tlsKeyFrom = named("tls-key", "PMD_TLS_KEY")
	a.tlsCAFrom = named("tls-ca", "PMD_TLS_CA")
	a.allowOriginFrom = named("allow-origin", "PMD_ALLOW_ORIGIN")
	a.allowHostFrom = named("allow-host", "PMD_ALLOW_HOST")
}

func (a *accessFlags) register(fs *flag.FlagSet) error {
	insecure, err := envBool("PMD_INSECURE", false)
	if err != nil {
		return err
	}
	fs.StringVar(&a.auth, "auth", envString("PMD_AUTH", ""), "YAML file of tokens (their SHA-256s): every route but /healthz then needs one; reloaded on SIGHUP (env PMD_AUTH)")
	fs.StringVar(&a.tlsCert, "tls-cert", envString("PMD_TLS_CERT", ""), "serve HTTPS with this PEM certificate (chain); reloaded on SIGHUP (env PMD_TLS_CERT)")
	fs.StringVar(&a.tlsKey, "tls-key", envString("PMD_TLS_KEY", ""), "the PEM private key of --tls-cert (env PMD_TLS_KEY)")
	fs.StringVar(&a.tlsCA, "tls-ca", envString("PMD_TLS_CA", ""), "a cluster node trusts the PEM certificates in this file, instead of the system's roots, when it forwards to an https leader (env PMD_TLS_CA)")
	fs.BoolVar(&a.insecure, "insecure", insecure, "serve a non-loopback address without --auth, and a cluster node's Raft port without --cluster-secret-file (env PMD_INSECURE)")
	a.allowOrigin = envString("PMD_ALLOW_ORIGIN", "")
	a.allowHost = envString("PMD_ALLOW_HOST", "")
	// A flag given on the command line replaces the environment's list; repeated, it adds.
	fromFlags := map[string]bool{}
	list := func(name string, dst *string) func(string) error {
		return func(v string) error {
			if !fromFlags[name] {
				fromFlags[name], *dst = true, ""
			}
			*dst = strings.Join(append(splitList(*dst), splitList(v)...), ",")
			return nil
		}
	}
	fs.Func("allow-origin", "also allow browser requests from this origin, e.g. https://dash.example; repeat or separate with commas (env PMD_ALLOW_ORIGIN)", list("allow-origin", &a.allowOrigin))
	fs.Func("allow-host", "also serve requests for this Host name, on any port; *.example.com is any one label under example.com (IP addresses and localhost are always served); repeat or separate with commas (env PMD_ALLOW_HOST)", list("allow-host", &a.allowHost))
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (a *accessFlags) check() error {
	if (a.tlsCert == "") != (a.tlsKey == "") {
		return &usageError{a.tlsCertFrom + " and " + a.tlsKeyFrom + " go together"}
	}
	for _, o := range splitList(a.allowOrigin) {
		if err := checkOrigin(a.allowOriginFrom, o); err != nil {
			return err
		}
	}
	for _, h := range splitList(a.allowHost) {
		if err := checkHost(a.allowHostFrom, h); err != nil {
			return err
		}
	}
	return nil
}

// checkOrigin refuses an --allow-origin no browser sends, which would never match;
// from names where it was given (--allow-origin or PMD_ALLOW_ORIGIN).
func checkOrigin(from, o string) error {
	scheme, hostPort, ok := strings.Cut(o, "://")
	if !ok || scheme != "http" && scheme != "https" || hostPort == "" || strings.Contains(hostPort, "/") {
		return &usageError{fmt.Sprintf("%s %q: want scheme://host[:port], as a browser sends it in Origin", from, o)}
	}
	if strings.Contains(hostPort, "*") {
		return &usageError{fmt.Sprintf("%s %q: an origin is matched exactly, without wildcards: give each one", from, o)}
	}
	if _, port, err := net.SplitHostPort(hostPort); err == nil && (scheme == "https" && port == "443" || scheme == "http" && port == "80") {
		return &usageError{fmt.Sprintf("%s %q: browsers leave the default port out of Origin: give %s://%s", from, o, scheme, strings.TrimSuffix(hostPort, ":"+port))}
	}
	return nil
}

// checkHost refuses an --allow-host that would never match a request's Host name: one
// with a scheme, a path or a port (the name is matched whatever the port), an IP address
// (always served) or a wildcard other than a leading "*." label; from names where it
// was given (--allow-host or PMD_ALLOW_HOST).
func checkHost(from, h string) error {
	name := strings.TrimPrefix(h, "*.")
	switch {
	case strings.Contains(h, "://") || strings.Contains(h, "/"):
		return &usageError{fmt.Sprintf("%s %q: give a host name only, such as pmd.example.com, without a scheme or a path", from, h)}
	case net.ParseIP(strings.Trim(h, "[]")) != nil:
		return &usageError{fmt.Sprintf("%s %q: IP addresses are always served; give host names only", from, h)}
	case strings.Contains(h, ":"):
		return &usageError{fmt.Sprintf("%s %q: give the name without a port: it is served on every port pmd listens on", from, h)}
	case strings.Contains(name, "*") || name == "":
		return &usageError{fmt.Sprintf("%s %q: the only wildcard is a leading \"*.\", one label under a domain, as in *.example.com", from, h)}
	}
	return nil
}

// access is what serve runs with under accessFlags: the tokens, the TLS certificate,
// and the names the daemon serves.
type access struct {
	flags   accessFlags
	tokens  *server.Tokens // nil without --auth
	cert    atomic.Pointer[tls.Certificate]
	forward *tls.Config // for requests to the leader; nil without --tls-ca
	// certHosts is held from loading a certificate to serving its names (allowHosts),
	// and by serve from reading the names to setting them: else a reload at the end of
	// start-up could set the new names, then serve the old ones over them.
	certHosts sync.Mutex
}

// loadAccess reads the token file and the certificate, and refuses a non-loopback
// listener without tokens (a usage error). It runs right after the port is bound, before the data
// directory is touched.
func loadAccess(f accessFlags, addr net.Addr) (*access, error) {
	a := &access{flags: f}
	if f.auth != "" {
		t, err := server.LoadTokens(f.auth)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.authFrom, err)
		}
		a.tokens = t
	}
	if err := server.ListenCheck(addr, a.tokens != nil, f.insecure); err != nil {
		// A flag combination pmd refuses, as a Raft port without a secret: exit 2.
		return nil, &usageError{err.Error()}
	}
	if f.tlsCert != "" {
		if err := a.loadCert(); err != nil {
			return nil, err
		}
	}
	if f.tlsCA != "" {
		var err error
		if a.forward, err = clientTLS(f.tlsCAFrom, f.tlsCA); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// clientTLS is the TLS configuration of a client that trusts the PEM certificates of
// file instead of the system's roots; from names where file was given (--tls-ca, or
// PMD_TLS_CA when it came from there).
func clientTLS(from, file string) (*tls.Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, &exitError{exitTrouble, fmt.Errorf("%s: %w", from, err)}
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		return nil, &usageError{fmt.Sprintf("%s %s: no PEM certificate in it", from, file)}
	}
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, nil
}

func (a *access) loadCert() error {
	cert, err := tls.LoadX509KeyPair(a.flags.tlsCert, a.flags.tlsKey)
	if err != nil {
		return fmt.Errorf("%s %s, %s %s: %w", a.flags.tlsCertFrom, a.flags.tlsCert, a.flags.tlsKeyFrom, a.flags.tlsKey, err)
	}
	a.cert.Store(&cert)
	return nil
}

// listener wraps ln in TLS when a certificate is given. The certificate is read at
// each handshake from what loadCert last loaded, so SIGHUP renews it without a restart.
func (a *access) listener(ln net.Listener) net.Listener {
	if a.cert.Load() == nil {
		return ln
	}
	return tls.NewListener(ln, &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return a.cert.Load(), nil
		},
	})
}

// scheme is the URL scheme the daemon serves.
func (a *access) scheme() string {
	if a.cert.Load() != nil {
		return "https"
	}
	return "http"
}

// allowHosts are the Host names served besides addresses and localhost: those given,
// the host of --addr when it is a name, and the certificate's DNS names.
func (a *access) allowHosts(addr string) []string {
	hosts := splitList(a.flags.allowHost)
	if h, _, err := net.SplitHostPort(addr); err == nil && h != "" && net.ParseIP(h) == nil {
		hosts = append(hosts, h)
	}
	if c := a.cert.Load(); c != nil && len(c.Certificate) > 0 {
		if leaf, err := x509.ParseCertificate(c.Certificate[0]); err == nil {
			hosts = append(hosts, leaf.DNSNames...)
		}
	}
	return hosts
}

// hangups is serve's SIGHUP handler. It catches SIGHUP from serve's start to its end, so
// that a SIGHUP never ends the daemon (Go's default action for it, which skips the
// graceful shutdown), and runs what the daemon registered with onHangup: the files it can
// reload. Without any, a SIGHUP is logged as having nothing to reload.
type hangups struct {
	sig      chan os.Signal
	done     chan struct{} // closed by stop
	exited   chan struct{} // closed when run's goroutine returns; nil before run
	mu       sync.Mutex
	next     int
	reloads  []hangupReload // in the order registered
	starting atomic.Bool    // until serve calls serving
}

type hangupReload struct {
	id     int
	reload func()
}

type hangupsKey struct{}

// catchHangups catches SIGHUP from now until stop. Signals that arrive before run are
// handled once it runs.
func catchHangups() *hangups {
	h := &hangups{sig: make(chan os.Signal, 1), done: make(chan struct{})}
	h.starting.Store(true)
	signal.Notify(h.sig, syscall.SIGHUP)
	return h
}

// run handles each SIGHUP until stop, logging to logger, and returns ctx carrying h for
// onHangup. A SIGHUP once ctx is done (the daemon shutting down) reloads nothing.
func (h *hangups) run(ctx context.Context, logger *slog.Logger) context.Context {
	h.exited = make(chan struct{})
	go func() {
		defer close(h.exited)
		for {
			select {
			case <-h.sig:
				h.handle(ctx, logger)
			case <-h.done:
				return
			}
		}
	}()
	return context.WithValue(ctx, hangupsKey{}, h)
}

func (h *hangups) handle(ctx context.Context, logger *slog.Logger) {
	if ctx.Err() != nil {
		logger.Info("SIGHUP while shutting down: nothing reloaded")
		return
	}
	h.mu.Lock()
	reloads := slices.Clone(h.reloads)
	h.mu.Unlock()
	if len(reloads) == 0 {
		if h.starting.Load() {
			logger.Info("SIGHUP while starting: nothing to reload yet")
		} else {
			logger.Info("SIGHUP: nothing to reload; the config file is read only at start")
		}
		return
	}
	for _, r := range reloads {
		r.reload()
	}
}

// serving says the daemon has started: a SIGHUP with nothing to reload no longer waits
// for the start.
func (h *hangups) serving() { h.starting.Store(false) }

// stop stops catching SIGHUP and waits for a reload in progress.
func (h *hangups) stop() {
	signal.Stop(h.sig)
	close(h.done)
	if h.exited != nil {
		<-h.exited
	}
}

// onHangup registers reload with the SIGHUP handler of serve that ctx carries (see
// hangups.run): it runs on each SIGHUP until ctx is done. The daemon's files that SIGHUP
// reloads each register their own reload, and log what they reloaded.
func onHangup(ctx context.Context, reload func()) {
	h, ok := ctx.Value(hangupsKey{}).(*hangups)
	if !ok {
		panic("pmd: onHangup without serve's SIGHUP handler in ctx")
	}
	h.mu.Lock()
	id := h.next
	h.next++
	h.reloads = append(h.reloads, hangupReload{id, reload})
	h.mu.Unlock()
	context.AfterFunc(ctx, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.reloads = slices.DeleteFunc(h.reloads, func(r hangupReload) bool { return r.id == id })
	})
}

// reloadOnHangup reads the token file and the certificate again on each SIGHUP until
// ctx is done, and gives newCert a certificate it loaded (its names are Hosts to serve),
// certHosts held from the load to newCert's return. A file that does not load is logged
// and the one in use stays.
func (a *access) reloadOnHangup(ctx context.Context, logger *slog.Logger, newCert func()) {
	if a.tokens == nil && a.cert.Load() == nil {
		return
	}
	onHangup(ctx, func() {
		if a.tokens != nil {
			if err := a.tokens.Reload(); err != nil {
				logger.Error("tokens not reloaded; the ones in use stay", "file", a.flags.auth, "err", err)
			} else {
				logger.Info("tokens reloaded", "file", a.flags.auth, "tokens", a.tokens.Len())
			}
		}
		if a.cert.Load() != nil {
			a.certHosts.Lock()
			err := a.loadCert()
			if err == nil {
				newCert()
			}
			a.certHosts.Unlock()
			if err != nil {
				logger.Error("certificate not reloaded; the one in use stays", "err", err)
			} else {
				logger.Info("certificate reloaded", "file", a.flags.tlsCert)
			}
		}
	})
}
