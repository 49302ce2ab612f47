package vaultstandin

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// kvMount is one KV version 2 mount: path → versions.
type kvMount struct {
	secrets map[string]*kvSecret
}

type kvSecret struct {
	versions []*kvVersion // index v-1
}

type kvVersion struct {
	data      map[string]any
	created   time.Time
	deleted   time.Time // zero: not deleted
	destroyed bool
}

// EnableKV2 mounts a KV version 2 engine at mount (such as "secret").
func (s *Server) EnableKV2(mount string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mounts[mount] = &kvMount{secrets: map[string]*kvSecret{}}
}

// Put writes a new version of mount/path and returns its number, as
// POST /v1/MOUNT/data/PATH does.
func (s *Server) Put(mount, path string, data map[string]any) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mounts[mount]
	if m == nil {
		panic("vaultstandin: no KV mount " + mount)
	}
	return m.put(path, data).number
}

// Delete soft-deletes versions of mount/path (the latest when none are
// named), as POST /v1/MOUNT/delete/PATH does.
func (s *Server) Delete(mount, path string, versions ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mounts[mount].each(path, versions, func(v *kvVersion) { v.deleted = time.Now() })
}

// Destroy destroys versions of mount/path, as POST /v1/MOUNT/destroy/PATH
// does.
func (s *Server) Destroy(mount, path string, versions ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mounts[mount].each(path, versions, func(v *kvVersion) { v.destroyed, v.data = true, nil })
}

type written struct {
	number int
	v      *kvVersion
}

func (m *kvMount) put(path string, data map[string]any) written {
	sec := m.secrets[path]
	if sec == nil {
		sec = &kvSecret{}
		m.secrets[path] = sec
	}
	v := &kvVersion{data: data, created: time.Now().UTC()}
	sec.versions = append(sec.versions, v)
	return written{number: len(sec.versions), v: v}
}

func (m *kvMount) each(path string, versions []int, f func(*kvVersion)) {
	sec := m.secrets[path]
	if sec == nil {
		return
	}
	if len(versions) == 0 {
		versions = []int{len(sec.versions)}
	}
	for _, n := range versions {
		if n >= 1 && n <= len(sec.versions) {
			f(sec.versions[n-1])
		}
	}
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// metadata is a version's metadata as the data endpoints return it.
func metadata(n int, v *kvVersion) map[string]any {
	return map[string]any{"created_time": timeString(v.created), "custom_metadata": nil,
		"deletion_time": timeString(v.deleted), "destroyed": v.destroyed, "version": n}
}

// kv serves MOUNT/{data,delete,destroy}/PATH.
func (s *Server) kv(w http.ResponseWriter, r *http.Request, t *token, path string, req map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m *kvMount
	var rest string
	for mount, mm := range s.mounts {
		if r, ok := strings.CutPrefix(path, mount+"/"); ok {
			m, rest = mm, r
			break
		}
	}
	if m == nil {
		writeErrors(w, http.StatusNotFound, "no handler for route \""+path+"\". route entry not found.")
		return
	}
	op, key, _ := strings.Cut(rest, "/")
	if key == "" || strings.HasSuffix(key, "/") {
		writeErrors(w, http.StatusNotFound, "1 error occurred:\n\t* unsupported path\n\n")
		return
	}
	switch {
	case op == "data" && r.Method == http.MethodGet:
		if s.denied[path] && !t.root {
			writeErrors(w, http.StatusForbidden, "1 error occurred:\n\t* permission denied\n\n")
			return
		}
		s.read(w, r, m, key)
	case op == "data" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		data, ok := req["data"].(map[string]any)
		if !ok {
			writeErrors(w, http.StatusBadRequest, "no data provided")
			return
		}
		wr := m.put(key, data)
		writeJSON(w, http.StatusOK, envelope(metadata(wr.number, wr.v), nil))
	case op == "data" && r.Method == http.MethodDelete:
		m.each(key, nil, func(v *kvVersion) { v.deleted = time.Now() })
		w.WriteHeader(http.StatusNoContent)
	case (op == "delete" || op == "destroy") && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		raw, _ := req["versions"].([]any)
		var versions []int
		for _, x := range raw {
			if f, ok := x.(float64); ok {
				versions = append(versions, int(f))
			}
		}
		if len(versions) == 0 {
			writeErrors(w, http.StatusBadRequest, "no version number provided")
			return
		}
		m.each(key, versions, func(v *kvVersion) {
			if op == "delete" {
				v.deleted = time.Now()
			} else {
				v.destroyed, v.data = true, nil
			}
		})
		w.WriteHeader(http.StatusNoContent)
	default:
		writeErrors(w, http.StatusMethodNotAllowed)
	}
}

// read follows the KV plugin's pathDataRead: no secret or no such version
// is a 404 with no body data; a deleted or destroyed version is a 404
// carrying its metadata and null data.
func (s *Server) read(w http.ResponseWriter, r *http.Request, m *kvMount, key string) {
	sec := m.secrets[key]
	if sec == nil {
		writeErrors(w, http.StatusNotFound)
		return
	}
	n := len(sec.versions)
	if q := r.URL.Query().Get("version"); q != "" {
		if v, err := strconv.Atoi(q); err == nil && v > 0 {
			n = v
		}
	}
	if n < 1 || n > len(sec.versions) {
		writeErrors(w, http.StatusNotFound)
		return
	}
	v := sec.versions[n-1]
	body := map[string]any{"data": nil, "metadata": metadata(n, v)}
	if !v.deleted.IsZero() && v.deleted.Before(time.Now()) || v.destroyed {
		writeJSON(w, http.StatusNotFound, envelope(body, nil))
		return
	}
	// A copy, so that the stored map is not shared with the encoder.
	data := make(map[string]any, len(v.data))
	for k, x := range v.data {
		data[k] = x
	}
	body["data"] = data
	writeJSON(w, http.StatusOK, envelope(body, nil))
}
