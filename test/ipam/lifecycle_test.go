package ipam_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

// TestEipLifecycle: pools change live. Growing takes effect at once;
// shrinking under addresses in use is refused with the Services named;
// disable stops new assignments only; deleting an Eip in use is refused
// (webhook) and held back (finalizer); a changed namespace binding is
// re-evaluated for pending Services.
func TestEipLifecycle(t *testing.T) {
	startController(t, instanceOpts{})
	mkEip(t, "lc", "203.0.113.96-203.0.113.97")
	ns := namespace(t, "lc", nil)
	mkSvc(t, ns, "s1", openelb, eipAnn("lc"))
	waitIPs(t, ns, "s1", "203.0.113.96")
	mkSvc(t, ns, "s2", openelb, eipAnn("lc"))
	waitIPs(t, ns, "s2", "203.0.113.97")
	mkSvc(t, ns, "s3", openelb, eipAnn("lc"))
	waitEvent(t, ns, "s3", "PoolExhausted", "Eip lc has no free address")
	waitEip(t, "lc", "exhausted", func(e *networkv1alpha2.Eip) (bool, string) {
		return condTrue(e, networkv1alpha2.EipConditionExhausted) && e.Status.Occupied, yamlString(e.Status)
	})

	t.Run("grow", func(t *testing.T) {
		if err := patchEip(t, "lc", func(e *networkv1alpha2.Eip) { e.Spec.Address = "203.0.113.96-203.0.113.99" }); err != nil {
			t.Fatal(err)
		}
		waitIPs(t, ns, "s3", "203.0.113.98")
		waitEip(t, "lc", "grown", func(e *networkv1alpha2.Eip) (bool, string) {
			return e.Status.PoolSize == 4 && e.Status.Usage == 3 && !condTrue(e, networkv1alpha2.EipConditionExhausted), yamlString(e.Status)
		})
	})
	t.Run("shrink under addresses in use is refused", func(t *testing.T) {
		err := patchEip(t, "lc", func(e *networkv1alpha2.Eip) { e.Spec.Address = "203.0.113.98-203.0.113.99" })
		if err == nil || !strings.Contains(err.Error(), "addresses in use lie outside it: 203.0.113.96 ("+ns+"/s1), 203.0.113.97 ("+ns+"/s2)") {
			t.Fatalf("shrink: %v", err)
		}
		deleteSvc(t, ns, "s1")
		if err := patchEip(t, "lc", func(e *networkv1alpha2.Eip) { e.Spec.Address = "203.0.113.97-203.0.113.99" }); err != nil {
			t.Fatalf("shrink around the addresses in use: %v", err)
		}
		stays(t, ns, "s2", time.Second, "203.0.113.97")
	})
	t.Run("disable stops new assignments only", func(t *testing.T) {
		if err := patchEip(t, "lc", func(e *networkv1alpha2.Eip) { e.Spec.Disable = true }); err != nil {
			t.Fatal(err)
		}
		mkSvc(t, ns, "s4", openelb, eipAnn("lc"))
		waitEvent(t, ns, "s4", "EipUnavailable", "Eip lc is disabled")
		waitEip(t, "lc", "not ready", func(e *networkv1alpha2.Eip) (bool, string) {
			c := condOf(e, networkv1alpha2.EipConditionReady)
			return c.Status == metav1.ConditionFalse && c.Reason == networkv1alpha2.EipReasonDisabled && !e.Status.Ready, yamlString(e.Status)
		})
		stays(t, ns, "s2", 500*time.Millisecond, "203.0.113.97")
		if err := patchEip(t, "lc", func(e *networkv1alpha2.Eip) { e.Spec.Disable = false }); err != nil {
			t.Fatal(err)
		}
		waitIPs(t, ns, "s4", "203.0.113.99") // re-evaluated at once (OpenELB never retried)
	})
	t.Run("delete in use is refused, then held by the finalizer", func(t *testing.T) {
		err := env.Client.Delete(ctx, eipObj("lc", ""))
		if err == nil || !strings.Contains(err.Error(), "eip lc is in use by") || !strings.Contains(err.Error(), ns+"/s2") {
			t.Fatalf("delete in use: %v", err)
		}
		withoutEipWebhook(t, func() {
			if err := env.Client.Delete(ctx, eipObj("lc", "")); err != nil {
				t.Fatal(err)
			}
		})
		e := waitEip(t, "lc", "deletion blocked", func(e *networkv1alpha2.Eip) (bool, string) {
			return e.DeletionTimestamp != nil && condTrue(e, networkv1alpha2.EipConditionDeletionBlocked), yamlString(e.Status)
		})
		if msg := condOf(e, networkv1alpha2.EipConditionDeletionBlocked).Message; !strings.Contains(msg, ns+"/s2") {
			t.Errorf("DeletionBlocked message %q does not name the Services", msg)
		}
		stays(t, ns, "s2", time.Second, "203.0.113.97")
		for _, s := range []string{"s2", "s3", "s4"} {
			deleteSvc(t, ns, s)
		}
		gone(t, eipObj("lc", ""), 15*time.Second)
	})
}

// TestBindingChange: a pending Service is re-evaluated when an Eip's
// namespaces or a namespace's labels change.
func TestBindingChange(t *testing.T) {
	startController(t, instanceOpts{})
	mkEip(t, "bc-names", "203.0.113.112/29", boundTo("bc-nobody"))
	mkEip(t, "bc-labels", "203.0.113.120/29", selector(map[string]string{"tier": "bc-db"}))
	ns := namespace(t, "bc", nil)
	ns2 := namespace(t, "bc2", nil)
	mkSvc(t, ns, "pending", openelb)
	waitEvent(t, ns, "pending", "NoEip", "no available IPv4 eip found")
	if err := patchEip(t, "bc-names", func(e *networkv1alpha2.Eip) { e.Spec.Namespaces = append(e.Spec.Namespaces, ns) }); err != nil {
		t.Fatal(err)
	}
	waitIPs(t, ns, "pending", "203.0.113.112")

	mkSvc(t, ns2, "pending2", openelb)
	waitEvent(t, ns2, "pending2", "NoEip", "no available")
	n := &corev1.Namespace{}
	if err := env.Client.Get(ctx, keyOf(ns2), n); err != nil {
		t.Fatal(err)
	}
	n.Labels["tier"] = "bc-db"
	if err := env.Client.Update(ctx, n); err != nil {
		t.Fatal(err)
	}
	waitIPs(t, ns2, "pending2", "203.0.113.120")
}

// TestRelease: the address is released (and the Eip status updated) when
// the Service is deleted, changes type, loses the opt-in annotation (even
// when it was its only annotation) or names another Eip; a Service being
// deleted shows no address once released.
func TestRelease(t *testing.T) {
	startController(t, instanceOpts{})
	mkEip(t, "rel", "203.0.113.128/29", isDefault)
	ns := namespace(t, "rel", nil)
	usage := func(n int) {
		t.Helper()
		waitEip(t, "rel", "usage", func(e *networkv1alpha2.Eip) (bool, string) { return e.Status.Usage == n, yamlString(e.Status) })
	}

	t.Run("deleted", func(t *testing.T) {
		mkSvc(t, ns, "a", openelb)
		waitIPs(t, ns, "a", "203.0.113.128")
		usage(1)
		deleteSvc(t, ns, "a")
		usage(0)
		mkSvc(t, ns, "a2", openelb)
		waitIPs(t, ns, "a2", "203.0.113.128")
		deleteSvc(t, ns, "a2")
	})
	t.Run("type changed", func(t *testing.T) {
		mkSvc(t, ns, "b", openelb)
		waitIPs(t, ns, "b", "203.0.113.128")
		if err := patchSvc(t, ns, "b", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.AllocateLoadBalancerNodePorts = nil
		}); err != nil {
			t.Fatal(err)
		}
		s := waitIPs(t, ns, "b")
		waitFor(t, 10*time.Second, "markers removed", func() (bool, string) {
			s = getSvc(t, ns, "b")
			_, a := s.Annotations[networkv1alpha2.AnnotationAllocatedFrom]
			_, l := s.Labels[networkv1alpha2.LabelEip]
			return !a && !l && len(s.Finalizers) == 0, yamlString(s.ObjectMeta)
		})
		waitEvent(t, ns, "b", "ReleaseIP", "Released 203.0.113.128")
		usage(0)
	})
	t.Run("opt-in annotation removed while it is the only one", func(t *testing.T) {
		mkSvc(t, ns, "c", openelb)
		waitIPs(t, ns, "c", "203.0.113.128")
		// kubectl apply of a manifest without annotations: all of them go.
		if err := patchSvc(t, ns, "c", func(s *corev1.Service) { s.Annotations = nil }); err != nil {
			t.Fatal(err)
		}
		waitIPs(t, ns, "c")
		usage(0)
		deleteSvc(t, ns, "c") // OpenELB 0.6 hung here on its finalizer
	})
	t.Run("another Eip named", func(t *testing.T) {
		mkEip(t, "rel-b", "203.0.113.136/29")
		mkSvc(t, ns, "d", openelb)
		waitIPs(t, ns, "d", "203.0.113.128")
		if err := patchSvc(t, ns, "d", eipAnn("rel-b")); err != nil {
			t.Fatal(err)
		}
		waitIPs(t, ns, "d", "203.0.113.136")
		usage(0)
		deleteSvc(t, ns, "d")
	})
	t.Run("a Service held by another finalizer shows no address once released", func(t *testing.T) {
		mkSvc(t, ns, "e", openelb, func(s *corev1.Service) { s.Finalizers = []string{"test.openelb/hold"} })
		waitIPs(t, ns, "e", "203.0.113.128")
		if err := env.Client.Delete(ctx, svcObj(ns, "e")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "release of a terminating Service", func() (bool, string) {
			s := getSvc(t, ns, "e")
			return len(s.Status.LoadBalancer.Ingress) == 0 && len(s.Finalizers) == 1 && s.DeletionTimestamp != nil, yamlString(s.ObjectMeta) + yamlString(s.Status)
		})
		mkSvc(t, ns, "f", openelb)
		waitIPs(t, ns, "f", "203.0.113.128")
		if err := patchSvc(t, ns, "e", func(s *corev1.Service) { s.Finalizers = nil }); err != nil {
			t.Fatal(err)
		}
	})
}
