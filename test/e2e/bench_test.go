//go:build e2e

package e2e

import (
	"testing"
	"time"

	"github.com/openelb/openelb-operator/test/lab"
)

// BenchmarkLabUpDown measures setup and teardown of the 3-node lab with FRR,
// with the control plane (what every scenario pays) and without it (BGP- and
// ARP-only labs). Run it with
//
//	go test -tags e2e -run '^$' -bench LabUpDown -benchtime 5x ./test/e2e/
//
// setup-s and teardown-s are per run; ns/op is their sum.
func BenchmarkLabUpDown(b *testing.B) {
	lab.RequireRunnable(b, lab.Options{})
	b.Run("control-plane", func(b *testing.B) { benchUpDown(b, lab.Options{}) })
	b.Run("no-control-plane", func(b *testing.B) { benchUpDown(b, lab.Options{NoControlPlane: true}) })
}

func benchUpDown(b *testing.B, o lab.Options) {
	var setup, teardown time.Duration
	for b.Loop() {
		t0 := time.Now()
		l, err := lab.Up(b.Context(), o)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := l.Down(); err != nil {
			b.Fatal(err)
		}
		teardown += time.Since(t1)
		setup += t1.Sub(t0)
		if left := l.Leftovers(); len(left) > 0 {
			b.Fatalf("left behind: %v", left)
		}
		_ = l.RemoveRunDir()
	}
	b.ReportMetric(setup.Seconds()/float64(b.N), "setup-s")
	b.ReportMetric(teardown.Seconds()/float64(b.N), "teardown-s")
}
