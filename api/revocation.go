package api

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardgate/cardgate/internal/fileread"
)

// maxCRLBytes bounds a caller CRL file; a larger one is a mistake.
const maxCRLBytes = 16 << 20

// Revocation refuses callers whose certificates a CRL lists. It reads one
// file holding a CRL (PEM, possibly several blocks, or DER) for every CA
// that issues caller certificates, checks each CRL's signature against its
// CA, and keeps the last good set when a reload fails. It fails closed: a
// CRL past its next update refuses every caller of its CA until a fresh
// one is loaded, and a caller whose issuer has no CRL is refused. It is
// safe for concurrent use.
type Revocation struct {
	path string
	cas  []*x509.Certificate
	now  func() time.Time

	loadMu sync.Mutex // serializes Load
	cur    atomic.Pointer[crlSet]
	errMu  sync.Mutex
	err    error // the last failed reload; nil after a success
}

// crlSet is one loaded file.
type crlSet struct {
	byIssuer map[string]*crl // key: the issuing CA's raw certificate
	stamp    fileStamp
}

type crl struct {
	issuer     string   // subject, for messages
	number     *big.Int // the CRL number extension; nil when absent
	thisUpdate time.Time
	nextUpdate time.Time
	revoked    map[string]bool // serial numbers, as big.Int.String()
}

// Extensions that make a CRL cover only part of what its issuer revoked:
// a delta CRL, and an issuing distribution point (which can scope a CRL to
// some certificates or reasons). Loaded as a CA's whole CRL, either would
// admit certificates the CA revoked elsewhere.
var (
	oidDeltaCRLIndicator        = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}
)

type fileStamp struct {
	size    int64
	modTime time.Time
}

// NewRevocation loads path against the caller CAs. now nil means
// time.Now. It fails unless every CA has a CRL in the file that it signed
// and that is not past its next update.
func NewRevocation(path string, cas []*x509.Certificate, now func() time.Time) (*Revocation, error) {
	if now == nil {
		now = time.Now
	}
	if len(cas) == 0 {
		return nil, errors.New("api: revocation: no caller CA")
	}
	r := &Revocation{path: path, cas: cas, now: now}
	if err := r.Load(); err != nil {
		return nil, err
	}
	return r, nil
}

// Load re-reads the file. On failure the last good CRLs stay in force
// (until their own next update) and the error is returned and reported by
// Check.
func (r *Revocation) Load() error {
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	set, err := r.read()
	r.errMu.Lock()
	r.err = err
	r.errMu.Unlock()
	if err != nil {
		return err
	}
	r.cur.Store(set)
	return nil
}

// Changed reports whether the file's size or modification time differs
// from the last good load (or it cannot be read), for a poller that
// reloads on change.
func (r *Revocation) Changed() bool {
	fi, err := os.Stat(r.path)
	set := r.cur.Load()
	return err != nil || set == nil || fi.Size() != set.stamp.size || !fi.ModTime().Equal(set.stamp.modTime)
}

func (r *Revocation) read() (*crlSet, error) {
	// A FIFO or device at the path is refused without blocking: a reload
	// that hung on one would hold loadMu, and every later reload with it.
	f, err := fileread.Open(r.path)
	if err != nil {
		return nil, fmt.Errorf("api: revocation: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("api: revocation: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxCRLBytes+1))
	if err != nil {
		return nil, fmt.Errorf("api: revocation: %w", err)
	}
	if len(raw) > maxCRLBytes {
		return nil, fmt.Errorf("api: revocation: %s is larger than %d bytes", r.path, maxCRLBytes)
	}
	ders, err := crlDERs(raw)
	if err != nil {
		return nil, fmt.Errorf("api: revocation: %s: %w", r.path, err)
	}
	now := r.now()
	set := &crlSet{byIssuer: map[string]*crl{}, stamp: fileStamp{size: fi.Size(), modTime: fi.ModTime()}}
	for i, der := range ders {
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("api: revocation: %s: CRL %d: %w", r.path, i+1, err)
		}
		ca := r.issuerOf(rl)
		if ca == nil {
			return nil, fmt.Errorf("api: revocation: %s: CRL %d (issuer %s) is not signed by a CA in listen.tls.client_ca_file", r.path, i+1, rl.Issuer)
		}
		if rl.NextUpdate.IsZero() {
			return nil, fmt.Errorf("api: revocation: %s: CRL %d (issuer %s) has no nextUpdate, so its staleness cannot be told", r.path, i+1, rl.Issuer)
		}
		if !now.Before(rl.NextUpdate) {
			return nil, fmt.Errorf("api: revocation: %s: CRL %d (issuer %s) expired at %s; publish a fresh one", r.path, i+1, rl.Issuer, rl.NextUpdate.UTC().Format(time.RFC3339))
		}
		if rl.ThisUpdate.After(now.Add(crlClockSkew)) {
			return nil, fmt.Errorf("api: revocation: %s: CRL %d (issuer %s) is dated %s, in the future", r.path, i+1, rl.Issuer, rl.ThisUpdate.UTC().Format(time.RFC3339))
		}
		for _, ext := range rl.Extensions {
			if ext.Id.Equal(oidDeltaCRLIndicator) || ext.Id.Equal(oidIssuingDistributionPoint) {
				return nil, fmt.Errorf("api: revocation: %s: CRL %d (issuer %s) is a delta or partitioned CRL; give the CA's complete CRL", r.path, i+1, rl.Issuer)
			}
		}
		key := string(ca.Raw)
		if _, dup := set.byIssuer[key]; dup {
			return nil, fmt.Errorf("api: revocation: %s: two CRLs for issuer %s; keep only the newest", r.path, rl.Issuer)
		}
		c := &crl{issuer: ca.Subject.String(), number: rl.Number, thisUpdate: rl.ThisUpdate, nextUpdate: rl.NextUpdate, revoked: map[string]bool{}}
		if err := notOlder(r.cur.Load(), key, c); err != nil {
			return nil, fmt.Errorf("api: revocation: %s: CRL %d: %w", r.path, i+1, err)
		}
		for _, e := range rl.RevokedCertificateEntries {
			if e.SerialNumber != nil {
				c.revoked[e.SerialNumber.String()] = true
			}
		}
		set.byIssuer[key] = c
	}
	for _, ca := range r.cas {
		if set.byIssuer[string(ca.Raw)] == nil {
			return nil, fmt.Errorf("api: revocation: %s has no CRL for caller CA %s; add one, or its callers are all refused", r.path, ca.Subject)
		}
	}
	return set, nil
}

// crlClockSkew is how far in the future a CRL's thisUpdate may be.
const crlClockSkew = 5 * time.Minute

// notOlder refuses a CRL older than the one in force for the same CA: a
// signature proves who issued a CRL, not that it is current, and an older
// CRL published before a revocation would readmit the revoked caller. CRL
// numbers are compared when both have one, issue dates otherwise.
func notOlder(cur *crlSet, key string, next *crl) error {
	if cur == nil {
		return nil
	}
	prev := cur.byIssuer[key]
	if prev == nil {
		return nil
	}
	if prev.number != nil && next.number != nil {
		if next.number.Cmp(prev.number) < 0 {
			return fmt.Errorf("CRL number %s of %s is lower than the one in force (%s): refusing a rollback", next.number, next.issuer, prev.number)
		}
		return nil
	}
	if next.thisUpdate.Before(prev.thisUpdate) {
		return fmt.Errorf("the CRL of %s was issued %s, before the one in force (%s): refusing a rollback", next.issuer, next.thisUpdate.UTC().Format(time.RFC3339), prev.thisUpdate.UTC().Format(time.RFC3339))
	}
	return nil
}

// Handler refuses, on every request, a caller whose certificate a CRL
// loaded after its handshake revokes (or whose CRL has gone stale), and
// closes its connection.
func (r *Revocation) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := r.CheckState(req.TLS); err != nil {
			w.Header().Set("Connection", "close")
			writeError(w, req, &Error{Code: CodeUnauthenticated, Message: "the caller certificate is revoked, or its CRL is stale"})
			return
		}
		next.ServeHTTP(w, req)
	})
}

// issuerOf returns the caller CA that signed rl, or nil.
func (r *Revocation) issuerOf(rl *x509.RevocationList) *x509.Certificate {
	for _, ca := range r.cas {
		if bytes.Equal(ca.RawSubject, rl.RawIssuer) && rl.CheckSignatureFrom(ca) == nil {
			return ca
		}
	}
	return nil
}

// crlDERs returns the CRLs in raw: one or more PEM "X509 CRL" blocks, or
// one DER CRL.
func crlDERs(raw []byte) ([][]byte, error) {
	if !bytes.Contains(raw, []byte("-----BEGIN")) {
		if len(raw) == 0 {
			return nil, errors.New("empty file")
		}
		return [][]byte{raw}, nil
	}
	var out [][]byte
	for rest := raw; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			return nil, fmt.Errorf("PEM block %q is not an X509 CRL", b.Type)
		}
		out = append(out, b.Bytes)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM X509 CRL block")
	}
	return out, nil
}

// VerifyConnection is a tls.Config.VerifyConnection for the caller
// listener. It runs after the chain was verified against the client CAs
// and refuses a caller when a certificate of its verified chain is listed
// by the CRL of its issuer, when the leaf's issuer has no CRL, or when
// that CRL is past its next update.
func (r *Revocation) VerifyConnection(cs tls.ConnectionState) error {
	return r.CheckState(&cs)
}

// CheckState applies the CRLs to a connection's verified chains. The
// handshake check alone would let a caller revoked while its connection
// is open go on being served over keep-alive or HTTP/2; Handler runs this
// on every request too.
func (r *Revocation) CheckState(cs *tls.ConnectionState) error {
	if cs == nil {
		return errors.New("api: revocation: not a TLS connection")
	}
	set := r.cur.Load()
	if set == nil {
		return errors.New("api: revocation: no CRL loaded")
	}
	if len(cs.VerifiedChains) == 0 {
		return errors.New("api: revocation: caller certificate not verified")
	}
	now := r.now()
	for _, chain := range cs.VerifiedChains {
		if err := set.check(chain, now); err != nil {
			return err
		}
	}
	return nil
}

func (s *crlSet) check(chain []*x509.Certificate, now time.Time) error {
	for i := 0; i+1 < len(chain); i++ {
		c := s.byIssuer[string(chain[i+1].Raw)]
		if c == nil {
			if i == 0 {
				// An intermediate that is not itself a caller CA issued
				// the leaf: no CRL of ours covers it.
				return fmt.Errorf("api: revocation: caller certificate issued by %s, which has no CRL", chain[1].Subject)
			}
			continue
		}
		if !now.Before(c.nextUpdate) {
			return fmt.Errorf("api: revocation: the CRL of %s expired at %s; refusing its callers until a fresh one is loaded", c.issuer, c.nextUpdate.UTC().Format(time.RFC3339))
		}
		if c.revoked[chain[i].SerialNumber.String()] {
			return fmt.Errorf("api: revocation: certificate serial %s issued by %s is revoked", chain[i].SerialNumber, c.issuer)
		}
	}
	return nil
}

// Check is a readiness check: it fails when a CRL is past its next update
// (every caller of that CA is being refused) and reports a failed reload.
func (r *Revocation) Check() (string, error) {
	set := r.cur.Load()
	if set == nil {
		return "", errors.New("api: revocation: no CRL loaded")
	}
	now := r.now()
	var next time.Time
	for _, c := range set.byIssuer {
		if !now.Before(c.nextUpdate) {
			return "", fmt.Errorf("api: revocation: the CRL of %s expired at %s; every caller it covers is refused", c.issuer, c.nextUpdate.UTC().Format(time.RFC3339))
		}
		if next.IsZero() || c.nextUpdate.Before(next) {
			next = c.nextUpdate
		}
	}
	detail := fmt.Sprintf("%d CRL(s), next update %s", len(set.byIssuer), next.UTC().Format(time.RFC3339))
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.err != nil {
		detail += "; last reload failed: " + r.err.Error()
	}
	return detail, nil
}
