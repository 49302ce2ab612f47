package credentials

import "context"

// read takes the variable as the process environment holds it (a Go
// string, which cannot be cleared; prefer a file or Vault for long-lived
// keys).
func (e Env) read(_ context.Context, l *loader) ([]byte, int, error) {
	v, ok := l.getenv(e.Var)
	if !ok {
		return nil, 0, fail(CodeEmpty, nil, "$%s is not set", e.Var)
	}
	if v == "" {
		return nil, 0, fail(CodeEmpty, nil, "$%s is empty", e.Var)
	}
	if int64(len(v)) > l.maxBytes {
		return nil, 0, fail(CodeTooLarge, nil, "$%s is %d bytes, more than %d", e.Var, len(v), l.maxBytes)
	}
	return []byte(v), 0, nil
}
