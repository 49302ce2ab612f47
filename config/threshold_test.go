package config

import "testing"

// TestDefaultThreshold pins the allowlist's M-of-N default at 2: one
// auditor alone must never be able to widen where cards may go. The
// constant, Default and a file that leaves the key out must all say 2, so
// that lowering any one of them fails here.
func TestDefaultThreshold(t *testing.T) {
	if DefaultThreshold != 2 {
		t.Errorf("DefaultThreshold = %d, want 2", DefaultThreshold)
	}
	if got := Default().Allowlist.Threshold; got != 2 {
		t.Errorf("Default().Allowlist.Threshold = %d, want 2", got)
	}
	// testdata/dev.yaml names no threshold.
	cfg, err := Load("testdata/dev.yaml", nil)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	if cfg.Allowlist.Threshold != 2 {
		t.Errorf("allowlist.threshold left out = %d, want 2", cfg.Allowlist.Threshold)
	}
}
