package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLS names the PEM files of mutual TLS between a coordinator and its nodes: this process's
// certificate and key, and the CA certificate that signed every peer's. Each side presents its
// certificate and requires the other's, signed by CA; a node's certificate must name the host it
// is dialled by (its advertised address: a DNS name or an IP address in its SANs). The token is
// checked too.
type TLS struct {
	Cert, Key, CA string
}

// configs loads the files into the server's and the client's tls.Config.
func (t *TLS) configs() (server, client *tls.Config, err error) {
	if t.Cert == "" || t.Key == "" || t.CA == "" {
		return nil, nil, errors.New("tls: cert, key and ca are all required")
	}
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	pem, err := os.ReadFile(t.CA)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("tls: %s holds no PEM certificate", t.CA)
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client, nil
}
