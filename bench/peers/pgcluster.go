package peers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoPostgres is returned by StartPostgres when no PostgreSQL server binaries
// are installed (scripts/install-postgres.sh installs Debian's).
var ErrNoPostgres = errors.New("postgres: initdb not found (run scripts/install-postgres.sh)")

// pgCluster is a throw-away PostgreSQL cluster: initdb'd into a temporary
// directory, listening on a free loopback port, removed by stop.
type pgCluster struct {
	dir  string // holds data/ and the socket
	port int
	cmd  *exec.Cmd
	done chan error // receives cmd.Wait's result
	// version is what postgres --version says, e.g. "PostgreSQL 15.18".
	version string
	cred    *syscall.Credential
}

// findInitdb returns the bin directory of the newest Debian PostgreSQL install,
// or the one holding initdb on PATH.
func findPgBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	if len(dirs) > 0 {
		return filepath.Dir(dirs[0]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrNoPostgres
}

// pgMajor reads the version out of /usr/lib/postgresql/<major>/bin/initdb.
func pgMajor(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// postgresRunAs picks who runs the server: PostgreSQL refuses to run as root, so a
// root process runs it as the "postgres" user Debian's package creates.
func postgresRunAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("postgres: running as root needs a postgres user to run the server: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("postgres: user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("postgres: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startPgCluster initdb's a cluster and starts its server with durability on:
// fsync, synchronous_commit and full_page_writes are PostgreSQL's defaults and
// are also set explicitly so the command line says what was measured.
func startPgCluster(ctx context.Context) (*pgCluster, error) {
	bin, err := findPgBin()
	if err != nil {
		return nil, err
	}
	cred, err := postgresRunAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pmd-peers-pg-")
	if err != nil {
		return nil, fmt.Errorf("postgres: temp dir: %w", err)
	}
	c := &pgCluster{dir: dir, cred: cred}
	if err := c.start(ctx, bin); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func (c *pgCluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

func (c *pgCluster) start(ctx context.Context, bin string) error {
	if c.cred != nil {
		if err := os.Chown(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("postgres: chown %s: %w", c.dir, err)
		}
	}
	out, err := c.command(ctx, filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return fmt.Errorf("postgres: %s --version: %w", bin, err)
	}
	// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
	if f := strings.Fields(string(out)); len(f) >= 3 {
		c.version = "PostgreSQL " + f[2]
	}
	data := filepath.Join(c.dir, "data")
	initdb := c.command(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("postgres: initdb %s: %w\n%s", data, err, out)
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	c.port = port
	var log bytes.Buffer
	// Not CommandContext: the server must outlive ctx until stop shuts it down.
	srv := c.command(context.Background(), filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(port), "-k", c.dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "full_page_writes=on",
		"-c", "max_connections=64")
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		return fmt.Errorf("postgres: start server: %w", err)
	}
	c.cmd = srv
	c.done = make(chan error, 1)
	go func() { c.done <- srv.Wait() }()
	return c.waitReady(ctx, &log)
}

// waitReady polls until the server accepts a connection, it exits, or ctx ends.
func (c *pgCluster) waitReady(ctx context.Context, log *bytes.Buffer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := pgx.Connect(ctx, c.url("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case werr := <-c.done:
			c.done <- werr
			return fmt.Errorf("postgres: server exited before accepting connections: %v\n%s", werr, log.String())
		case <-ctx.Done():
			return fmt.Errorf("postgres: server on port %d not ready: %w (last: %v)", c.port, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func (c *pgCluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// stop shuts the server down (fast shutdown) and removes the cluster.
func (c *pgCluster) stop() error {
	var err error
	if c.cmd != nil && c.cmd.Process != nil {
		if serr := c.cmd.Process.Signal(syscall.SIGINT); serr == nil {
			select {
			case <-c.done:
			case <-time.After(time.Minute):
				err = c.cmd.Process.Kill()
				<-c.done
			}
		}
	}
	return errors.Join(err, os.RemoveAll(c.dir))
}
