package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pmd-dev/pmd/client"
)

// TestSubscribeMistrusted: a subscription to an https address whose connection TLS
// refuses the same way every time ends with that error, as one the daemon refuses
// does: the address answers plain HTTP, or its certificate is not one the client
// trusts. It reconnected to it for ever, telling Dropped, and the caller's loop never
// saw why. An expired certificate is waited for: the daemon takes a renewed one on
// SIGHUP.
func TestSubscribeMistrusted(t *testing.T) {
	never := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a request reached the server: %s %s", r.Method, r.URL)
	})
	plain := httptest.NewServer(never)
	defer plain.Close()
	// The servers' logs of the handshakes the client refused are noise here.
	quietLog := log.New(io.Discard, "", 0)
	untrusted := httptest.NewUnstartedServer(never)
	untrusted.Config.ErrorLog = quietLog
	untrusted.StartTLS()
	defer untrusted.Close()
	expired, roots := expiredTLSServer(t, never, quietLog)
	defer expired.Close()
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer trusting.CloseIdleConnections()

	tests := []struct {
		name string
		addr string
		opts []client.Option
		want func(error) bool // nil: the subscription keeps reconnecting
	}{
		{"plain HTTP", "https://" + plain.Listener.Addr().String(), nil,
			func(err error) bool { return errors.Is(err, http.ErrSchemeMismatch) }},
		{"untrusted certificate", untrusted.URL, nil,
			func(err error) bool { var v *tls.CertificateVerificationError; return errors.As(err, &v) }},
		{"expired certificate", expired.URL, []client.Option{client.WithHTTPClient(trusting)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := newClient(t, tt.addr, append(tt.opts, client.WithReconnectDelay(time.Millisecond))...)
			drops := 0
			var got []error
			for _, err := range c.Subscribe(ctx, client.SubscribeOptions{Dropped: func(err error) {
				var conn *client.ConnectionError
				if !errors.As(err, &conn) {
					t.Errorf("dropped with %v, want a *client.ConnectionError", err)
				}
				if drops++; drops == 3 {
					cancel()
				}
			}}) {
				got = append(got, err)
			}
			if tt.want == nil {
				if len(got) != 0 || drops < 3 {
					t.Fatalf("yielded %v after %d drops; want it to reconnect until its context ends", got, drops)
				}
				return
			}
			if len(got) != 1 || !tt.want(got[0]) || drops != 0 {
				t.Fatalf("yielded %v after %d drops; want it to end with the TLS error, reconnecting never", got, drops)
			}
			var conn *client.ConnectionError
			if !errors.As(got[0], &conn) {
				t.Fatalf("%v is not a *client.ConnectionError", got[0])
			}
		})
	}
}

// expiredTLSServer serves h over TLS with a self-signed certificate for 127.0.0.1
// that expired an hour ago, logging to errorLog, and returns the pool that trusts it.
func expiredTLSServer(t *testing.T, h http.Handler, errorLog *log.Logger) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pmd test"},
		NotBefore:             time.Now().Add(-2 * time.Hour),
		NotAfter:              time.Now().Add(-time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = errorLog
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	ts.StartTLS()
	return ts, roots
}
