package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// tlsSource builds the client's TLS configuration. Exactly one is given.
type tlsSource func() (*tls.Config, error)

// WithPEMFiles authenticates the client with the PEM certificate and key
// in certFile and keyFile (the caller's identity is the certificate's
// spiffe:// URI SAN, else its first DNS SAN), and trusts only the PEM CA
// certificates in caFile for the gateway's certificate, whose name must
// match the URL's host.
//
// The key pair is read again, at the next TLS handshake, after either file
// changes, so a certificate renewed in place (cert-manager, spiffe-helper)
// is picked up without a new Client; until the two files match again, the
// previous pair is used. Call CloseIdleConnections to make the next call
// handshake at once.
func WithPEMFiles(certFile, keyFile, caFile string) Option {
	return func(c *Client) error {
		return c.setTLS(func() (*tls.Config, error) {
			roots, err := loadRoots(caFile)
			if err != nil {
				return nil, err
			}
			kp := &keyPairFiles{cert: certFile, key: keyFile}
			if _, err := kp.get(nil); err != nil {
				return nil, err
			}
			return &tls.Config{
				MinVersion:           tls.VersionTLS12,
				RootCAs:              roots,
				GetClientCertificate: kp.get,
			}, nil
		})
	}
}

// WithX509Source authenticates the client with the X.509-SVIDs of svids
// and verifies the gateway's X.509-SVID against bundles, accepting only
// the SPIFFE IDs that server authorizes (for example
// tlsconfig.AuthorizeID(spiffeid.RequireFromString("spiffe://example.org/cardgate"))).
// A workloadapi.X509Source from go-spiffe is both sources; it follows the
// Workload API's rotations, and each new connection uses the current SVID
// and bundle. The caller owns the sources and closes them after the Client.
func WithX509Source(svids x509svid.Source, bundles x509bundle.Source, server tlsconfig.Authorizer) Option {
	return func(c *Client) error {
		if svids == nil || bundles == nil || server == nil {
			return errors.New("client: WithX509Source needs an SVID source, a bundle source and an authorizer for the gateway's ID")
		}
		return c.setTLS(func() (*tls.Config, error) {
			conf := tlsconfig.MTLSClientConfig(svids, bundles, server)
			conf.MinVersion = tls.VersionTLS12
			return conf, nil
		})
	}
}

// WithX509SourceAndServerCA authenticates the client with the X.509-SVIDs
// of svids, as WithX509Source does, for a gateway whose own certificate is
// an ordinary one: it is verified against the PEM CA certificates in
// caFile, and its name must match the URL's host.
func WithX509SourceAndServerCA(svids x509svid.Source, caFile string) Option {
	return func(c *Client) error {
		if svids == nil {
			return errors.New("client: WithX509SourceAndServerCA needs an SVID source")
		}
		return c.setTLS(func() (*tls.Config, error) {
			roots, err := loadRoots(caFile)
			if err != nil {
				return nil, err
			}
			conf := tlsconfig.MTLSWebClientConfig(svids, roots)
			conf.MinVersion = tls.VersionTLS12
			return conf, nil
		})
	}
}

func (c *Client) setTLS(src tlsSource) error {
	if c.tlsSource != nil {
		return errors.New("client: give one of WithPEMFiles, WithX509Source or WithX509SourceAndServerCA")
	}
	c.tlsSource = src
	return nil
}

// loadRoots reads a PEM bundle that must hold at least one certificate.
func loadRoots(path string) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("client: CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// keyPairFiles is a client certificate read from two files, read again
// when either changes.
type keyPairFiles struct {
	cert, key string

	mu       sync.Mutex
	pair     *tls.Certificate
	certStat fileStamp
	keyStat  fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// get is tls.Config.GetClientCertificate. A read that fails after the
// first keeps the previous pair: a renewal caught half-written must not
// cut the caller off.
func (k *keyPairFiles) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cs, cerr := stamp(k.cert)
	ks, kerr := stamp(k.key)
	if k.pair != nil && (cerr != nil || kerr != nil || (cs == k.certStat && ks == k.keyStat)) {
		return k.pair, nil
	}
	pair, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		if k.pair != nil {
			return k.pair, nil
		}
		return nil, fmt.Errorf("client: client certificate: %w", err)
	}
	k.pair, k.certStat, k.keyStat = &pair, cs, ks
	return k.pair, nil
}
