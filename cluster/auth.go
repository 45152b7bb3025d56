package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// The cluster secret. Nodes given one (Config.Secrets) prove to each other that they know
// it before anything else crosses a connection to the Raft address: a connection that
// does not is closed before its first request is read. The handshake, after the header
// (mux.go), whose kind byte is then connRaftAuth or connServiceAuth:
//
//	dialer → listener: nonce Nc (32 random bytes)
//	listener → dialer: nonce Ns (32 random bytes)
//	dialer → listener: HMAC-SHA256(secret, "pmd cluster client v1" | header | Nc | Ns)
//	listener → dialer: HMAC-SHA256(secret, "pmd cluster server v1" | header | Nc | Ns)
//
// Each side checks the other's MAC in constant time against every secret it accepts,
// and proves with its first one (a rotation: see docs/cluster.md, "Security"). The secret
// never crosses the wire; each side's nonce makes a recorded handshake useless on a
// new connection, the labels keep one side's MAC from serving as the other's, and the
// header (the kind and the dialer's node id) is covered, so it cannot be changed on the
// way. The dialer proves first: whoever reaches the port gets no MAC to test guesses of
// the secret against offline, only a nonce; and the dialer sends nothing else before
// it checked the listener's proof, so Raft's data never goes to an impostor. The bytes
// after the handshake are neither encrypted nor authenticated.
const (
	nonceLen = 32
	macLen   = sha256.Size
	// MinSecretLen is the shortest cluster secret a node takes, in bytes.
	MinSecretLen = 16
)

// ErrSecret is the error of a connection whose other end does not prove it knows the
// cluster secret, or has none.
var ErrSecret = errors.New("cluster: the cluster secret handshake failed")

// keyring is the secrets a node accepts; it proves with the first. Empty: the node has
// no secret and neither asks for one nor proves one.
type keyring [][]byte

func checkSecrets(secrets [][]byte) error {
	for i, s := range secrets {
		if len(s) < MinSecretLen {
			return fmt.Errorf("cluster: cluster secret %d of %d is %d bytes; a secret must be at least %d", i+1, len(secrets), len(s), MinSecretLen)
		}
	}
	return nil
}

func handshakeMAC(secret []byte, label string, header, nc, ns []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(label))
	h.Write(header)
	h.Write(nc)
	h.Write(ns)
	return h.Sum(nil)
}

const (
	labelServer = "pmd cluster server v1"
	labelClient = "pmd cluster client v1"
)

// accepts reports whether mac is the MAC of one of k's secrets.
func (k keyring) accepts(mac []byte, label string, header, nc, ns []byte) bool {
	ok := false
	for _, s := range k {
		if hmac.Equal(mac, handshakeMAC(s, label, header, nc, ns)) {
			ok = true
		}
	}
	return ok
}

// clientHandshake runs the dialer's side on c, after header: it returns once this side
// sent its proof and the listener proved it knows the secret.
func (k keyring) clientHandshake(c net.Conn, header []byte) error {
	nc := make([]byte, nonceLen)
	if _, err := rand.Read(nc); err != nil {
		return err
	}
	if _, err := c.Write(append(header, nc...)); err != nil {
		return err
	}
	ns := make([]byte, nonceLen)
	if _, err := io.ReadFull(c, ns); err != nil {
		return fmt.Errorf("%w: %s closed the connection instead of starting the handshake (it has no cluster secret?): %w", ErrSecret, c.RemoteAddr(), err)
	}
	if _, err := c.Write(handshakeMAC(k[0], labelClient, header, nc, ns)); err != nil {
		return err
	}
	mac := make([]byte, macLen)
	if _, err := io.ReadFull(c, mac); err != nil {
		return fmt.Errorf("%w: %s does not know this node's cluster secret (it refused this node's proof): %w", ErrSecret, c.RemoteAddr(), err)
	}
	if !k.accepts(mac, labelServer, header, nc, ns) {
		return fmt.Errorf("%w: %s does not know this node's cluster secret", ErrSecret, c.RemoteAddr())
	}
	return nil
}

// serverHandshake runs the listener's side on c, whose header was read: nil once the
// dialer proved it knows the secret, and this side sent its own proof.
func (k keyring) serverHandshake(c net.Conn, header []byte) error {
	nc := make([]byte, nonceLen)
	if _, err := io.ReadFull(c, nc); err != nil {
		return fmt.Errorf("the connection ended in the handshake: %w", err)
	}
	ns := make([]byte, nonceLen)
	if _, err := rand.Read(ns); err != nil {
		return err
	}
	if _, err := c.Write(ns); err != nil {
		return fmt.Errorf("the connection ended in the handshake: %w", err)
	}
	mac := make([]byte, macLen)
	if _, err := io.ReadFull(c, mac); err != nil {
		return fmt.Errorf("the connection ended in the handshake: %w", err)
	}
	if !k.accepts(mac, labelClient, header, nc, ns) {
		return errors.New("the dialer does not know the cluster secret")
	}
	if _, err := c.Write(handshakeMAC(k[0], labelServer, header, nc, ns)); err != nil {
		return fmt.Errorf("the connection ended in the handshake: %w", err)
	}
	return nil
}

// logLimiter lets a line through at most once per period, and counts those it held.
type logLimiter struct {
	period time.Duration
	mu     sync.Mutex
	last   time.Time // zero: nothing logged yet
	held   int
}

// allow reports whether a line may be logged at now, and how many were held back since
// the last one logged.
func (l *logLimiter) allow(now time.Time) (ok bool, held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.period {
		l.held++
		return false, 0
	}
	held, l.last, l.held = l.held, now, 0
	return true, held
}
