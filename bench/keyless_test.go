package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestRunKeylessSmoke runs the keyless benchmark for a moment and checks
// the JSON the issue asks for.
func TestRunKeylessSmoke(t *testing.T) {
	opts := DefaultKeylessOptions()
	opts.Rounds, opts.Duration, opts.Warmup, opts.Depths = 1, 100*time.Millisecond, 50*time.Millisecond, []int{1, 4}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := RunKeyless(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, res); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Name  string             `json:"name"`
		Ops   map[string]float64 `json:"ops_per_s"`
		Ratio *float64           `json:"ratio_remote_vs_local"`
		P99   *float64           `json:"p99_ms"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "keyless" || got.Ratio == nil || got.P99 == nil {
		t.Fatalf("JSON %s", buf.Bytes())
	}
	for _, k := range []string{"remote_ecdsa_p256", "local_ecdsa_p256", "remote_rsa2048", "local_rsa2048"} {
		if got.Ops[k] <= 0 {
			t.Errorf("ops_per_s.%s = %v", k, got.Ops[k])
		}
	}
	if err := res.WriteTable(&bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
}
