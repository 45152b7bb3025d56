// Package testcert writes self-signed TLS certificates for the tests of pmd's HTTPS: the
// daemon's own (--tls-cert) and the private CAs its clients and cluster nodes are told to
// trust (--tls-ca). It is for tests only.
package testcert
