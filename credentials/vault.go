package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"
)

// maxVaultResponse bounds what is read from Vault for one secret: the
// secret's whole data map (every key, not only the one wanted) and its
// metadata.
const maxVaultResponse = 1 << 20

// kvResponse is the part of KV v2's read answer used here. The data
// values stay raw so that the wanted one never becomes a Go string (which
// could not be cleared); all of them are cleared after the read.
type kvResponse struct {
	Data struct {
		Data     map[string]json.RawMessage `json:"data"`
		Metadata struct {
			Version      int    `json:"version"`
			DeletionTime string `json:"deletion_time"`
			Destroyed    bool   `json:"destroyed"`
		} `json:"metadata"`
	} `json:"data"`
	Errors []string `json:"errors"`
}

func (r *kvResponse) wipe() {
	for _, v := range r.Data.Data {
		clear(v)
	}
}

// read sends GET /v1/MOUNT/data/PATH[?version=N] with the store's
// client (its token, namespace, TLS, timeout and retries) and returns
// data.data[KEY] and metadata.version.
func (v VaultKV) read(ctx context.Context, l *loader) ([]byte, int, error) {
	path := "/v1/" + v.Mount + "/data/" + v.Path
	r := l.vault.NewRequest(http.MethodGet, path)
	if v.Version > 0 {
		r.Params.Set("version", strconv.Itoa(v.Version))
	}
	where := v.Mount + "/data/" + v.Path
	if v.Version > 0 {
		where += " version " + strconv.Itoa(v.Version)
	}
	resp, err := l.vault.RawRequestWithContext(ctx, r)
	if resp == nil {
		if err == nil {
			err = errors.New("no response")
		}
		// Connection, TLS and timeout errors name the URL, never a body.
		return nil, 0, fail(CodeVaultUnavailable, noBody(err), "%s", where)
	}
	defer resp.Body.Close()
	raw, rerr := io.ReadAll(io.LimitReader(resp.Body, maxVaultResponse+1))
	defer clear(raw)
	if rerr != nil {
		return nil, 0, fail(CodeVaultUnavailable, rerr, "%s: status %d: reading the answer", where, resp.StatusCode)
	}
	if len(raw) > maxVaultResponse {
		return nil, 0, fail(CodeVaultUnavailable, nil, "%s: status %d: answer larger than %d bytes", where, resp.StatusCode, maxVaultResponse)
	}
	var kv kvResponse
	defer kv.wipe()
	if len(bytes.TrimSpace(raw)) > 0 {
		if jerr := json.Unmarshal(raw, &kv); jerr != nil {
			// json's errors can quote the input; say only what failed.
			return nil, 0, fail(CodeVaultUnavailable, nil, "%s: status %d: the answer is not KV v2's JSON", where, resp.StatusCode)
		}
	}
	md := kv.Data.Metadata
	switch {
	case resp.StatusCode == http.StatusNotFound && md.Destroyed:
		// KV v2 answers a deleted or destroyed version with 404 and its
		// metadata.
		return nil, 0, fail(CodeVaultNotFound, nil, "%s: version %d is destroyed", where, md.Version)
	case resp.StatusCode == http.StatusNotFound && md.DeletionTime != "":
		return nil, 0, fail(CodeVaultNotFound, nil, "%s: version %d is deleted", where, md.Version)
	case resp.StatusCode == http.StatusNotFound:
		return nil, 0, fail(CodeVaultNotFound, nil, "%s: no such secret or version (is %s a KV version 2 mount?)", where, v.Mount)
	case resp.StatusCode == http.StatusForbidden:
		return nil, 0, fail(CodeVaultDenied, nil, "%s: permission denied: the token's policy needs read on %s%s", where, where, vaultMessages(kv.Errors))
	case resp.StatusCode >= 300:
		return nil, 0, fail(CodeVaultUnavailable, nil, "%s: status %d%s", where, resp.StatusCode, vaultMessages(kv.Errors))
	case kv.Data.Data == nil:
		return nil, 0, fail(CodeVaultNotFound, nil, "%s: the answer holds no data (is %s a KV version 2 mount?)", where, v.Mount)
	case md.Version <= 0:
		return nil, 0, fail(CodeVaultUnavailable, nil, "%s: the answer names no version", where)
	case v.Version > 0 && md.Version != v.Version:
		return nil, 0, fail(CodeVaultUnavailable, nil, "%s: Vault answered with version %d", where, md.Version)
	}
	field, ok := kv.Data.Data[v.Key]
	if !ok {
		return nil, 0, fail(CodeVaultNotFound, nil, "%s version %d has no key %q", where, md.Version, v.Key)
	}
	b, ok := jsonString(field)
	if !ok {
		return nil, 0, fail(CodeInvalid, nil, "%s version %d: key %q is not a string", where, md.Version, v.Key)
	}
	if int64(len(b)) > l.maxBytes {
		clear(b)
		return nil, 0, fail(CodeTooLarge, nil, "%s version %d: key %q is %d bytes, more than %d", where, md.Version, v.Key, len(b), l.maxBytes)
	}
	return b, md.Version, nil
}

// vaultMessages formats Vault's error messages, which name the failure
// and never echo secret data, bounded in length.
func vaultMessages(msgs []string) string {
	m := strings.TrimSpace(strings.Join(msgs, "; "))
	if m == "" {
		return ""
	}
	if len(m) > 300 {
		m = m[:300] + "…"
	}
	return ": " + m
}

// noBody drops an *api.ResponseError's body, which it keeps verbatim
// when it is not JSON.
func noBody(err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return fmt.Errorf("status %d", re.StatusCode)
	}
	return err
}
