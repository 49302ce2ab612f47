package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"time"
)

// runProbe is a container healthcheck. The image holds nothing but the
// binary (no shell, no curl), so `cardgate probe URL` GETs an admin or
// health URL and exits non-zero unless the answer is 200.
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := commandFlags("probe", "usage: cardgate probe [-timeout D] http://HOST:PORT/PATH\n\nGETs the URL and fails unless it answers 200; for container healthchecks of the admin listener\n\nflags:\n", stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "the whole request")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	u, err := url.Parse(fs.Arg(0))
	// Plain http only: the admin listener has no TLS, and the probe must
	// not become a general-purpose client inside the card environment.
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("probe: %q is not an http:// URL", fs.Arg(0))
	}
	// Loopback only: a healthcheck probes its own container.
	if ip, err := netip.ParseAddr(u.Hostname()); u.Hostname() != "localhost" && (err != nil || !ip.IsLoopback()) {
		return fmt.Errorf("probe: %s is not a loopback address; the probe only checks its own container", u.Hostname())
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	c := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe: %s answered %d", u.Redacted(), resp.StatusCode)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
