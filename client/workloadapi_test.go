package client

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cardgate/cardgate/internal/testpki"
)

// workloadAPI is a SPIFFE Workload API server (the X.509 part of the
// SpiffeWorkloadAPI gRPC service, as the SPIFFE Workload API standard
// specifies it) that streams an X509SVIDResponse to each FetchX509SVID
// caller, and another one whenever the test rotates.
type workloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer

	mu      sync.Mutex
	current *workload.X509SVIDResponse
	changed chan struct{} // closed and replaced at each rotation
}

// FetchX509SVID refuses a call without the "workload.spiffe.io: true"
// metadata, as the standard requires, then streams the current response
// and every later one.
func (w *workloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	if md, _ := metadata.FromIncomingContext(stream.Context()); len(md.Get("workload.spiffe.io")) != 1 || md.Get("workload.spiffe.io")[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	for {
		w.mu.Lock()
		resp, changed := w.current, w.changed
		w.mu.Unlock()
		if err := stream.Send(resp); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		}
	}
}

// rotate issues a new SVID for id from ca and pushes it, with the bundle
// of the CAs in trust, to every stream.
func (w *workloadAPI) rotate(t *testing.T, ca *testpki.CA, id string, trust ...*testpki.CA) {
	t.Helper()
	issued, err := ca.Issue(testpki.Leaf{URIs: []string{id}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	certBlock, _ := pem.Decode(issued.CertPEM)
	keyBlock, _ := pem.Decode(issued.KeyPEM)
	var bundle []byte
	for _, c := range trust {
		bundle = append(bundle, c.Cert.Raw...)
	}
	resp := &workload.X509SVIDResponse{Svids: []*workload.X509SVID{{
		SpiffeId: id, X509Svid: certBlock.Bytes, X509SvidKey: keyBlock.Bytes, Bundle: bundle,
	}}}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.current = resp
	if w.changed != nil {
		close(w.changed)
	}
	w.changed = make(chan struct{})
}

// startWorkloadAPI serves w on a Unix socket and returns its address in
// the form SPIFFE_ENDPOINT_SOCKET takes.
func startWorkloadAPI(t *testing.T, w *workloadAPI) string {
	t.Helper()
	// A short path: a Unix socket's path is limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "wl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(srv, w)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return "unix://" + sock
}

// TestWorkloadAPISource runs the client on go-spiffe's
// workloadapi.X509Source, fed by a Workload API server over a Unix
// socket, as with a SPIRE agent: the client presents the SVID the agent
// gave, and after the agent rotates the SVID and the trust bundle, new
// connections present the new SVID and trust a gateway certificate from
// the new CA, without a new Client.
func TestWorkloadAPISource(t *testing.T) {
	oldCA, err := testpki.NewCA("cardgate.test SPIFFE CA 1")
	if err != nil {
		t.Fatal(err)
	}
	newCA, err := testpki.NewCA("cardgate.test SPIFFE CA 2")
	if err != nil {
		t.Fatal(err)
	}
	gatewayID := spiffeid.RequireFromString("spiffe://cardgate.test/gateway")
	// Both gateways take callers from either CA; the first has a
	// certificate from the old CA, the second from the new one.
	gw1 := startSPIFFEGateway(t, oldCA, gatewayID.String(), step{status: 200, body: forwardOK}, step{status: 200, body: forwardOK})
	gw2 := startSPIFFEGateway(t, newCA, gatewayID.String(), step{status: 200, body: forwardOK})
	for _, gw := range []*scripted{gw1, gw2} {
		pool := x509.NewCertPool()
		pool.AddCert(oldCA.Cert)
		pool.AddCert(newCA.Cert)
		gw.srv.TLS.ClientCAs = pool
	}

	agent := &workloadAPI{}
	agent.rotate(t, oldCA, "spiffe://cardgate.test/billing", oldCA)
	addr := startWorkloadAPI(t, agent)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(addr)))
	if err != nil {
		t.Fatalf("workloadapi.NewX509Source: %v", err)
	}
	defer src.Close()

	newClient := func(url string) *Client {
		c, err := New(url, WithX509Source(src, src, tlsconfig.AuthorizeID(gatewayID)))
		if err != nil {
			t.Fatal(err)
		}
		c.sleep = func(context.Context, time.Duration) bool { return true }
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	c1, c2 := newClient(gw1.srv.URL), newClient(gw2.srv.URL)
	if _, err := c1.Forward(ctx, sampleForward()); err != nil {
		t.Fatalf("Forward with the agent's first SVID: %v", err)
	}
	// The new CA is not in the bundle yet: the second gateway is refused
	// at the handshake, and nothing is sent.
	_, err = c2.Forward(ctx, sampleForward())
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrNoAnswer) || e.Outcome != NotSent {
		t.Fatalf("Forward to a gateway the bundle does not trust yet: %v, want no answer, not_sent", err)
	}

	agent.rotate(t, newCA, "spiffe://cardgate.test/billing-rotated", oldCA, newCA)
	for {
		svid, err := src.GetX509SVID()
		if err == nil && svid.ID.String() == "spiffe://cardgate.test/billing-rotated" {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the X509Source did not receive the rotated SVID")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c1.CloseIdleConnections()
	if _, err := c1.Forward(ctx, sampleForward()); err != nil {
		t.Fatalf("Forward after the rotation: %v", err)
	}
	if _, err := c2.Forward(ctx, sampleForward()); err != nil {
		t.Fatalf("Forward to the new CA's gateway after the bundle rotation: %v", err)
	}

	callers := func(s *scripted) []string {
		var ids []string
		for _, r := range s.received() {
			ids = append(ids, r.clientURI)
		}
		return ids
	}
	if got, want := callers(gw1), []string{"spiffe://cardgate.test/billing", "spiffe://cardgate.test/billing-rotated"}; !slices.Equal(got, want) {
		t.Errorf("the first gateway's callers = %q, want %q: the SVID before and after the rotation", got, want)
	}
	if got, want := callers(gw2), []string{"spiffe://cardgate.test/billing-rotated"}; !slices.Equal(got, want) {
		t.Errorf("the second gateway's callers = %q, want %q", got, want)
	}
}
