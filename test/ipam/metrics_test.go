package ipam_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

// metricValue reads one sample from controller-runtime's registry (the
// registry the controller role serves on --metrics-bind-address).
func metricValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

// TestOneWritePerService: each new Service is written once (status,
// allocated-from annotation, Eip label and finalizer in one patch of the
// status subresource), and the metrics count assignments, errors and
// latency.
func TestOneWritePerService(t *testing.T) {
	startController(t, instanceOpts{})
	mkEip(t, "mw", "198.18.16.0/24", isDefault)
	mkEip(t, "mw-tiny", "198.18.17.1")
	ns := namespace(t, "mw", nil)
	t.Cleanup(func() { deleteServices(t, []string{ns}) })

	// Count the updates of every Service from its creation on.
	wc, err := client.NewWithWatch(newConfig(), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	w, err := wc.Watch(wctx, &corev1.ServiceList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	updates := map[string]int{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev := range w.ResultChan() {
			if s, ok := ev.Object.(*corev1.Service); ok && ev.Type == watch.Modified {
				mu.Lock()
				updates[s.Name]++
				mu.Unlock()
			}
		}
	}()
	writes0 := metricValue(t, "openelb_ipam_api_writes_total", map[string]string{"resource": "services/status"})
	latency0 := metricValue(t, "openelb_ipam_assignment_duration_seconds", nil)
	const n = 50
	createMany(t, []string{ns}, n, 8, "w", openelb)
	allAssigned(t, []string{ns}, n, "198.18.16.0/24", 30*time.Second)
	time.Sleep(2 * time.Second) // any second write would show up by now
	cancel()
	w.Stop()
	wg.Wait()
	for i := range n {
		if got := updates[fmt.Sprintf("w-%d", i)]; got != 1 {
			t.Errorf("w-%d was updated %d times after its creation, want 1", i, got)
		}
	}
	if d := metricValue(t, "openelb_ipam_api_writes_total", map[string]string{"resource": "services/status"}) - writes0; d != n {
		t.Errorf("services/status writes: %v, want %d", d, n)
	}
	if d := metricValue(t, "openelb_ipam_assignment_duration_seconds", nil) - latency0; d < n {
		t.Errorf("latency observations: %v, want ≥ %d", d, n)
	}
	waitFor(t, 10*time.Second, "Eip gauges", func() (bool, string) {
		total := metricValue(t, "openelb_eip_addresses_total", map[string]string{"eip": "mw"})
		used := metricValue(t, "openelb_eip_addresses_in_use", map[string]string{"eip": "mw"})
		return total == 256 && used == n, fmt.Sprint(total, used)
	})
	waitEip(t, "mw", "usage", func(e *networkv1alpha2.Eip) (bool, string) { return e.Status.Usage == n, fmt.Sprint(e.Status.Usage) })

	exhausted0 := metricValue(t, "openelb_ipam_assignment_errors_total", map[string]string{"reason": "PoolExhausted"})
	mkSvc(t, ns, "tiny1", openelb, eipAnn("mw-tiny"))
	waitIPs(t, ns, "tiny1", "198.18.17.1")
	mkSvc(t, ns, "tiny2", openelb, eipAnn("mw-tiny"))
	waitEvent(t, ns, "tiny2", "PoolExhausted", "Eip mw-tiny has no free address")
	if d := metricValue(t, "openelb_ipam_assignment_errors_total", map[string]string{"reason": "PoolExhausted"}) - exhausted0; d != 1 {
		t.Errorf("PoolExhausted errors: %v, want 1 (one per distinct problem)", d)
	}
}
