package ipam_test

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

// createMany creates n Services spread over the namespaces with w
// parallel clients and returns their keys.
func createMany(t *testing.T, nss []string, n, w int, prefix string, mods ...svcMod) []client.ObjectKey {
	t.Helper()
	keys := make([]client.ObjectKey, n)
	for i := range keys {
		keys[i] = client.ObjectKey{Namespace: nss[i%len(nss)], Name: fmt.Sprintf("%s-%d", prefix, i)}
	}
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.New(newConfig(), client.Options{Scheme: env.Scheme})
			if err != nil {
				errs <- err
				return
			}
			for i := range work {
				if err := c.Create(ctx, svcObj(keys[i].Namespace, keys[i].Name, mods...)); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create: %v", err)
	}
	return keys
}

// snapshot lists the Services of the namespaces: addresses and
// resourceVersions by key.
func snapshot(t *testing.T, nss []string) (map[client.ObjectKey][]string, map[client.ObjectKey]string) {
	t.Helper()
	addrs, rvs := map[client.ObjectKey][]string{}, map[client.ObjectKey]string{}
	for _, ns := range nss {
		var list corev1.ServiceList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, s := range list.Items {
			k := client.ObjectKeyFromObject(&s)
			addrs[k] = ingressIPs(&s)
			rvs[k] = s.ResourceVersion
		}
	}
	return addrs, rvs
}

// allAssigned waits until every Service has one address, and checks that
// no address is used twice and every address lies in the pool.
func allAssigned(t *testing.T, nss []string, n int, pool string, timeout time.Duration) map[client.ObjectKey][]string {
	t.Helper()
	prefix := netip.MustParsePrefix(pool)
	var addrs map[client.ObjectKey][]string
	waitFor(t, timeout, fmt.Sprintf("%d Services with an address", n), func() (bool, string) {
		addrs, _ = snapshot(t, nss)
		done := 0
		for _, a := range addrs {
			if len(a) == 1 {
				done++
			}
		}
		return done == n && len(addrs) == n, fmt.Sprintf("%d of %d", done, len(addrs))
	})
	seen := map[string]client.ObjectKey{}
	for k, a := range addrs {
		if other, dup := seen[a[0]]; dup {
			t.Fatalf("%s held by %s and %s", a[0], other, k)
		}
		seen[a[0]] = k
		if !prefix.Contains(netip.MustParseAddr(a[0])) {
			t.Fatalf("%s: %s outside %s", k, a[0], pool)
		}
	}
	return addrs
}

// deleteServices deletes the Services of the test's namespaces (envtest
// runs no namespace controller) and waits until they are gone (the
// controller releases every finalizer).
func deleteServices(t *testing.T, nss []string) {
	t.Helper()
	for _, ns := range nss {
		if err := env.Client.DeleteAllOf(ctx, &corev1.Service{}, client.InNamespace(ns)); err != nil {
			t.Errorf("delete services of %s: %v", ns, err)
		}
	}
	waitFor(t, 120*time.Second, "Services deleted", func() (bool, string) {
		left := 0
		for _, ns := range nss {
			var list corev1.ServiceList
			if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil && !apierrors.IsNotFound(err) {
				return false, err.Error()
			}
			left += len(list.Items)
		}
		return left == 0, fmt.Sprint(left, " left")
	})
}

// TestRestartKeepsAddresses: a controller restart with 1,000 assigned
// Services changes no address and writes no Service; a new Service after
// the restart gets a free address.
// assignEvents waits until every Service has its AssignIP Event naming its
// address: none is lost when many are assigned at once (client-go's
// recorder alone drops Events beyond 1,000 waiting; internal/events).
func assignEvents(t *testing.T, nss []string, want map[client.ObjectKey][]string) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d AssignIP Events", len(want)), func() (bool, string) {
		got := map[client.ObjectKey]bool{}
		for _, ns := range nss {
			var list corev1.EventList
			if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
				return false, err.Error()
			}
			for _, e := range list.Items {
				k := client.ObjectKey{Namespace: e.Namespace, Name: e.InvolvedObject.Name}
				if a, ok := want[k]; ok && e.Reason == "AssignIP" && strings.Contains(e.Message, a[0]+" ") {
					got[k] = true
				}
			}
		}
		return len(got) == len(want), fmt.Sprintf("%d of %d", len(got), len(want))
	})
}

func TestRestartKeepsAddresses(t *testing.T) {
	f := controllers(t)
	first := f.start(t, instanceOpts{})
	mkEip(t, "restart", "198.18.0.0/22", isDefault)
	var nss []string
	for i := range 10 {
		nss = append(nss, namespace(t, fmt.Sprintf("restart%d", i), nil))
	}
	t.Cleanup(func() { deleteServices(t, nss) })
	createMany(t, nss, 1000, 16, "s", openelb)
	before := allAssigned(t, nss, 1000, "198.18.0.0/22", 90*time.Second)
	_, rvs := snapshot(t, nss)
	assignEvents(t, nss, before)

	first.stop()
	second := f.start(t, instanceOpts{})
	mkSvc(t, nss[0], "after-restart", openelb)
	got := waitAnyIP(t, nss[0], "after-restart", 1)[0]
	for k, a := range before {
		if a[0] == got {
			t.Fatalf("the new Service got %s, held by %s", got, k)
		}
	}
	// Give the new controller time to look at every Service.
	waitFor(t, 30*time.Second, "restore", func() (bool, string) {
		st, ok := second.core.Alloc.PoolStatus("restart", 1)
		return ok && st.Usage == 1001, fmt.Sprint(st.Usage)
	})
	time.Sleep(2 * time.Second)
	after, rvsAfter := snapshot(t, nss)
	for k, a := range before {
		if fmt.Sprint(after[k]) != fmt.Sprint(a) {
			t.Errorf("%s: %v → %v after the restart", k, a, after[k])
		}
		if rvsAfter[k] != rvs[k] {
			t.Errorf("%s was written after the restart (resourceVersion %s → %s)", k, rvs[k], rvsAfter[k])
		}
	}
	waitEip(t, "restart", "usage 1001", func(e *networkv1alpha2.Eip) (bool, string) {
		return e.Status.Usage == 1001 && e.Status.PoolSize == 1024, fmt.Sprint(e.Status.Usage)
	})
}

// TestConflictingClaims: two Services edited to the same address while
// the controller is down. The older keeps it; the later one is reported
// and, having requested it, keeps no address; one that only showed it gets
// a fresh address. Nothing is stolen.
func TestConflictingClaims(t *testing.T) {
	f := controllers(t)
	first := f.start(t, instanceOpts{})
	mkEip(t, "cf", "203.0.113.208/28", isDefault)
	ns := namespace(t, "cf", nil)
	mkSvc(t, ns, "old", openelb, wantIP("203.0.113.212"))
	waitIPs(t, ns, "old", "203.0.113.212")
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has a resolution of one second
	mkSvc(t, ns, "auto", openelb)
	waitIPs(t, ns, "auto", "203.0.113.208")
	mkSvc(t, ns, "edited", openelb)
	waitIPs(t, ns, "edited", "203.0.113.209")
	first.stop()

	// While the controller is down: auto's status is edited to old's
	// address, edited asks for it (webhook bypassed) and shows it.
	setStatus := func(name, ip string) {
		s := getSvc(t, ns, name)
		orig := s.DeepCopy()
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		if err := env.Client.Status().Patch(ctx, s, client.MergeFrom(orig)); err != nil {
			t.Fatal(err)
		}
	}
	setStatus("auto", "203.0.113.212")
	withoutServiceWebhook(t, func() {
		if err := patchSvc(t, ns, "edited", wantIP("203.0.113.212")); err != nil {
			t.Fatal(err)
		}
	})
	setStatus("edited", "203.0.113.212")

	f.start(t, instanceOpts{})
	waitEvent(t, ns, "edited", "AddressConflict", "held by "+ns+"/old")
	waitIPs(t, ns, "edited")
	waitEvent(t, ns, "auto", "AddressConflict", "held by "+ns+"/old")
	waitIPs(t, ns, "auto", "203.0.113.208")
	stays(t, ns, "old", time.Second, "203.0.113.212")
}
