package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cardgate/cardgate/internal/fileread"
)

// maxFileBytes bounds the configuration file; a larger one is a mistake.
const maxFileBytes = 1 << 20

// Load reads path, decodes it strictly over the defaults, applies the
// environment overrides and validates the result. It reports every
// problem at once, as an *Errors: each key that is unknown, given twice or
// of the wrong form, then each check across keys that fails.
func Load(path string, getenv func(string) string) (Config, error) {
	return load(path, getenv, false)
}

// LoadAndCheckFiles is Load, and also checks that every file and directory
// the configuration names for the gateway can be read (see CheckFiles),
// reporting those problems together with the others. `cardgate serve`
// calls it before it connects to anything.
func LoadAndCheckFiles(path string, getenv func(string) string) (Config, error) {
	return load(path, getenv, true)
}

func load(path string, getenv func(string) string, checkFiles bool) (Config, error) {
	// A regular file only, opened without blocking and read with a bound:
	// a FIFO named as the config must not hang the start (nor ignore
	// SIGTERM while it waits for a writer).
	raw, err := fileread.Read(context.Background(), path, maxFileBytes)
	if errors.Is(err, fileread.ErrTooLarge) {
		return Config{}, fmt.Errorf("config: %s is larger than %d bytes", path, maxFileBytes)
	}
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, probs, lines, fatal := parse(raw)
	if fatal {
		return Config{}, &Errors{File: path, Problems: probs}
	}
	cfg.applyEnv(getenv)
	// The checks across keys run even when some keys were refused (those
	// kept their defaults), so that one start reports everything. A check
	// about a refused key would only repeat it, and is dropped.
	more := cfg.problems()
	if checkFiles {
		more = append(more, cfg.fileProblems()...)
	}
	for _, p := range unlessReported(probs, more) {
		if p.Env == "" {
			p.Line = lines[p.Key]
		}
		probs = append(probs, p)
	}
	if len(probs) > 0 {
		return Config{}, &Errors{File: path, Problems: probs}
	}
	return cfg, nil
}

// unlessReported returns the problems of more whose key is not one of
// reported's keys, nor inside or around one.
func unlessReported(reported, more []*FieldError) []*FieldError {
	var out []*FieldError
	for _, m := range more {
		dup := false
		for _, r := range reported {
			if r.Key != "" && (within(m.Key, r.Key) || within(r.Key, m.Key)) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, m)
		}
	}
	return out
}

// within reports whether key is outer or a key inside it (outer.x,
// outer[0]).
func within(key, outer string) bool {
	return key == outer || strings.HasPrefix(key, outer+".") || strings.HasPrefix(key, outer+"[")
}

// Parse decodes raw strictly over the defaults. It does not validate. Its
// error is an *Errors listing every key that is unknown, given twice or of
// the wrong form.
func Parse(raw []byte) (Config, error) {
	cfg, probs, _, _ := parse(raw)
	if len(probs) > 0 {
		return Config{}, &Errors{Problems: probs}
	}
	return cfg, nil
}

// parse decodes raw over the defaults, and returns the line of each key
// path it found. fatal means that the problems leave nothing to decode (not
// YAML, empty, not a mapping, several documents).
func parse(raw []byte) (cfg Config, probs []*FieldError, lines map[string]int, fatal bool) {
	cfg = Default()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return cfg, []*FieldError{{Msg: "the file is empty"}}, nil, true
		}
		// yaml's syntax errors name a line and what was wrong, never a
		// Go type.
		return cfg, []*FieldError{{Msg: err.Error()}}, nil, true
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return cfg, []*FieldError{{Line: extra.Line, Msg: "more than one YAML document: keep the whole configuration in one"}}, nil, true
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return cfg, []*FieldError{{Line: root.Line, Msg: "the file must be a mapping of keys (mode: …, listen: …), not " + describe(root)}}, nil, true
	}
	var d decoder
	d.mapping("", root, reflect.ValueOf(&cfg).Elem())
	return cfg, d.problems, d.lines, false
}

// Environment overrides. Addresses and secrets may come from the
// environment so that one file serves every replica and no secret needs to
// be written into it.
const (
	EnvListenAddr    = "CARDGATE_LISTEN_ADDR"
	EnvRedisAddrs    = "CARDGATE_REDIS_ADDRS" // comma-separated
	EnvRedisUsername = "CARDGATE_REDIS_USERNAME"
	EnvRedisPassword = "CARDGATE_REDIS_PASSWORD"
	EnvBoltPath      = "CARDGATE_BOLT_PATH"
	EnvKeyringPath   = "CARDGATE_KEYRING_PATH"
	EnvLogLevel      = "CARDGATE_LOG_LEVEL"
	EnvAdminAddr     = "CARDGATE_ADMIN_ADDR"
	EnvOTLPEndpoint  = "CARDGATE_OTLP_ENDPOINT"
)

// applyEnv applies the environment overrides and remembers which key each
// variable set.
func (c *Config) applyEnv(getenv func(string) string) {
	if getenv == nil {
		return
	}
	set := func(dst *string, name, key string) {
		if v := getenv(name); v != "" {
			*dst = v
			c.setFromEnv(key, name)
		}
	}
	set(&c.Listen.Addr, EnvListenAddr, "listen.addr")
	set(&c.Store.Redis.Username, EnvRedisUsername, "store.redis.username")
	set(&c.Store.Redis.Password, EnvRedisPassword, "store.redis.password")
	set(&c.Store.Redis.SentinelPassword, EnvRedisSentinelPassword, "store.redis.sentinel_password")
	set(&c.Store.Bolt.Path, EnvBoltPath, "store.bolt.path")
	set(&c.Keys.Local.Path, EnvKeyringPath, "keys.local.path")
	c.applyKeysEnv(set)
	set(&c.Log.Level, EnvLogLevel, "log.level")
	set(&c.Admin.Addr, EnvAdminAddr, "admin.addr")
	set(&c.Telemetry.Traces.OTLP.Endpoint, EnvOTLPEndpoint, "telemetry.traces.otlp.endpoint")
	if v := getenv(EnvRedisAddrs); v != "" {
		c.Store.Redis.Addrs = nil
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				c.Store.Redis.Addrs = append(c.Store.Redis.Addrs, a)
			}
		}
		c.setFromEnv("store.redis.addrs", EnvRedisAddrs)
	}
}

func (c *Config) setFromEnv(key, name string) {
	if c.env == nil {
		c.env = map[string]string{}
	}
	c.env[key] = name
}

// envFor returns the variable that set key, or a key around it, or "".
func (c *Config) envFor(key string) string {
	for k, name := range c.env {
		if within(key, k) {
			return name
		}
	}
	return ""
}

// FieldError names the key that is wrong and how to fix it.
type FieldError struct {
	// Key is the key's path, such as listen.read_timeout or
	// store.redis.addrs[0]; "" for a problem with the whole file.
	Key string
	// Msg says what is wrong and what is expected. It never quotes the
	// value of a key that holds a secret.
	Msg string
	// Line is the key's line in the file, 0 when unknown.
	Line int
	// Env is the environment variable that set the value, if one did.
	Env string
}

func (e *FieldError) Error() string { return "config: " + e.text() }

// text is the problem without the package prefix: the key, where it was
// set, and the message.
func (e *FieldError) text() string {
	var where []string
	if e.Env != "" {
		where = append(where, "from "+e.Env)
	} else if e.Line > 0 {
		where = append(where, "line "+strconv.Itoa(e.Line))
	}
	s := e.Key
	switch {
	case s == "" && len(where) > 0:
		s = where[0]
	case len(where) > 0:
		s += " (" + strings.Join(where, ", ") + ")"
	}
	if s == "" {
		return e.Msg
	}
	return s + ": " + e.Msg
}

// Errors is every problem found in one configuration, in the order found:
// the file's keys in file order, then the checks across keys, then the
// files it names. errors.As finds each *FieldError in it.
type Errors struct {
	// File is the configuration file's path ("" from Parse).
	File     string
	Problems []*FieldError
}

// Error lists the problems, one per line after the first.
func (e *Errors) Error() string {
	var b strings.Builder
	b.WriteString("config")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	if len(e.Problems) == 1 {
		b.WriteString(": " + e.Problems[0].text())
		return b.String()
	}
	fmt.Fprintf(&b, ": %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.text())
	}
	return b.String()
}

// Unwrap returns the problems, for errors.As.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}
