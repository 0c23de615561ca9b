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
)

// dupWatcher watches Services and fails when two of them show the same
// address at the same time.
type dupWatcher struct {
	mu    sync.Mutex
	shown map[client.ObjectKey][]string
	dups  []string
}

func watchDuplicates(t *testing.T, nss []string) *dupWatcher {
	t.Helper()
	d := &dupWatcher{shown: map[client.ObjectKey][]string{}}
	wc, err := client.NewWithWatch(newConfig(), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, ns := range nss {
		w, err := wc.Watch(wctx, &corev1.ServiceList{}, client.InNamespace(ns))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Stop()
			for ev := range w.ResultChan() {
				s, ok := ev.Object.(*corev1.Service)
				if !ok {
					continue
				}
				d.update(client.ObjectKeyFromObject(s), ev.Type == watch.Deleted, ingressIPs(s))
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return d
}

func (d *dupWatcher) update(k client.ObjectKey, deleted bool, ips []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if deleted {
		delete(d.shown, k)
		return
	}
	d.shown[k] = ips
	for other, o := range d.shown {
		if other == k {
			continue
		}
		for _, a := range o {
			for _, b := range ips {
				if a == b {
					d.dups = append(d.dups, fmt.Sprintf("%s shown by %s and %s", a, k, other))
				}
			}
		}
	}
}

// TestLeaderChange: two controller replicas with leader election and
// separate clients; the leader is stopped in the middle of 500 creates.
// Every Service ends with an address, none is ever shown by two Services.
func TestLeaderChange(t *testing.T) {
	f := controllers(t)
	a := f.start(t, instanceOpts{leaderElect: true})
	b := f.start(t, instanceOpts{leaderElect: true})
	mkEip(t, "ha", "198.18.8.0/22", isDefault)
	var nss []string
	for i := range 5 {
		nss = append(nss, namespace(t, fmt.Sprintf("ha%d", i), nil))
	}
	t.Cleanup(func() { deleteServices(t, nss) })
	dups := watchDuplicates(t, nss)
	var leader, follower *instance
	waitFor(t, 30*time.Second, "a leader", func() (bool, string) {
		switch {
		case a.elected():
			leader, follower = a, b
		case b.elected():
			leader, follower = b, a
		}
		return leader != nil, ""
	})

	done := make(chan struct{})
	go func() {
		defer close(done)
		createMany(t, nss, 500, 8, "burst", openelb)
	}()
	// Stop the leader once it assigned part of the burst.
	waitFor(t, 60*time.Second, "the leader to assign 100 Services", func() (bool, string) {
		st, _ := leader.core.Alloc.PoolStatus("ha", 1)
		return st.Usage >= 100, fmt.Sprint(st.Usage)
	})
	leader.stop()
	stoppedAt := time.Now()
	waitFor(t, 30*time.Second, "the follower to take over", func() (bool, string) { return follower.elected(), "" })
	t.Logf("leader stopped with the burst in flight; follower elected after %s", time.Since(stoppedAt).Round(time.Millisecond))
	<-done
	allAssigned(t, nss, 500, "198.18.8.0/22", 90*time.Second)
	dups.mu.Lock()
	defer dups.mu.Unlock()
	if len(dups.dups) > 0 {
		t.Fatalf("duplicates seen: %v", dups.dups[:min(len(dups.dups), 10)])
	}
}
