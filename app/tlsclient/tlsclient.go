// Package tlsclient builds the TLS settings mixmatch uses as a client of a cloud:
// the CA bundle its certificates are checked against and the client certificate it
// presents, with keystoneauth's option names (cafile, certfile, keyfile, insecure).
package tlsclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Files are the TLS options of one cloud as mixmatch.conf gives them.
type Files struct {
	CAFile   string
	CertFile string
	KeyFile  string
	Insecure bool
}

// Problem is a mistake in Files, tied to the option that has it.
type Problem struct {
	Key string // cafile, certfile or keyfile
	Err error
}

func (p *Problem) Error() string { return p.Key + ": " + p.Err.Error() }

// Config returns the client TLS configuration, or nil when nothing is set. Errors
// are *Problem.
func (f Files) Config() (*tls.Config, error) {
	if f == (Files{}) {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: f.Insecure}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, &Problem{"cafile", unwrapPath(err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &Problem{"cafile", fmt.Errorf("%s holds no PEM certificate", f.CAFile)}
		}
		c.RootCAs = pool
	}
	switch {
	case f.CertFile != "" && f.KeyFile == "":
		return nil, &Problem{"keyfile", errors.New("is required with certfile")}
	case f.CertFile == "" && f.KeyFile != "":
		return nil, &Problem{"certfile", errors.New("is required with keyfile")}
	case f.CertFile != "":
		pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, &Problem{"certfile", fmt.Errorf("with keyfile %s: %w", f.KeyFile, unwrapPath(err))}
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// unwrapPath keeps "open X: permission denied" readable without Go's "open" noise.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot read %s: %w", pe.Path, pe.Err)
	}
	return err
}
