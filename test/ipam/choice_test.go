package ipam_test

import (
	"math"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

// TestWhichServicesAreOurs: our loadBalancerClass always, another class
// never, a class-less Service with lb.kubesphere.io/v1alpha1: openelb, and
// every class-less Service with --allocate-classless.
func TestWhichServicesAreOurs(t *testing.T) {
	f := controllers(t)
	first := f.start(t, instanceOpts{})
	mkEip(t, "ours-default", "203.0.113.16/28", isDefault)
	ns := namespace(t, "ours", nil)

	mkSvc(t, ns, "annotated", openelb)
	waitIPs(t, ns, "annotated", "203.0.113.16")
	mkSvc(t, ns, "our-class", class(defaultClass))
	waitIPs(t, ns, "our-class", "203.0.113.17")
	mkSvc(t, ns, "classless")
	mkSvc(t, ns, "other-class", class("metallb.io/metallb"), openelb)
	stays(t, ns, "classless", time.Second)
	stays(t, ns, "other-class", time.Second)
	waitEip(t, "ours-default", "poolSize 16 of a /28", func(e *networkv1alpha2.Eip) (bool, string) {
		s := e.Status
		return s.PoolSize == 16 && s.FirstIP == "203.0.113.16" && s.LastIP == "203.0.113.31" && s.Usage == 2, yamlString(s)
	})

	// MetalLB-style: every class-less LoadBalancer Service.
	first.stop()
	f.start(t, instanceOpts{classless: true})
	waitIPs(t, ns, "classless", "203.0.113.18")
	stays(t, ns, "other-class", time.Second)
	waitIPs(t, ns, "annotated", "203.0.113.16")
}

// TestPoolChoice: explicit Eip → requested address → namespace-bound Eips
// by priority (skipping full and disabled ones) → default Eip; an address
// held never moves.
func TestPoolChoice(t *testing.T) {
	startController(t, instanceOpts{})
	mkEip(t, "pc-named", "203.0.113.32/29")
	mkEip(t, "pc-low", "203.0.113.40", boundTo("pc-team"), priority(20))
	mkEip(t, "pc-high", "203.0.113.41", boundTo("pc-team"), priority(10))
	mkEip(t, "pc-off", "203.0.113.42", boundTo("pc-team"), priority(1), disable)
	mkEip(t, "pc-elsewhere", "203.0.113.44/30", boundTo("pc-nobody"))
	mkEip(t, "pc-default", "203.0.113.48/29", isDefault)
	mkEip(t, "pc-sel", "203.0.113.56/30", selector(map[string]string{"tier": "pc-web"}))
	other := namespace(t, "pc-other", nil)
	team := "pc-team"
	if err := env.Client.Create(ctx, &corev1.Namespace{}); err == nil {
		t.Fatal("creating a namespace without name succeeded")
	}
	nsTeam := &corev1.Namespace{}
	nsTeam.Name = team
	if err := env.Client.Create(ctx, nsTeam); err != nil {
		t.Fatal(err)
	}

	t.Run("explicit Eip", func(t *testing.T) {
		mkSvc(t, other, "named", openelb, eipAnn("pc-named"))
		waitIPs(t, other, "named", "203.0.113.32")
	})
	t.Run("requested address: annotation, spec.loadBalancerIP, dual-stack annotation", func(t *testing.T) {
		mkSvc(t, other, "ann", openelb, wantIP("203.0.113.35"))
		mkSvc(t, other, "field", openelb, func(s *corev1.Service) { s.Spec.LoadBalancerIP = "203.0.113.36" })
		mkSvc(t, other, "plural", openelb, ann(networkv1alpha2.AnnotationRequestedIPs, "203.0.113.37"))
		mkSvc(t, other, "both", openelb, wantIP("203.0.113.38"), func(s *corev1.Service) { s.Spec.LoadBalancerIP = "203.0.113.39" })
		waitIPs(t, other, "ann", "203.0.113.35")
		waitIPs(t, other, "field", "203.0.113.36")
		waitIPs(t, other, "plural", "203.0.113.37")
		waitIPs(t, other, "both", "203.0.113.38") // the annotation wins, as in OpenELB
	})
	t.Run("namespace-bound Eips by priority, full and disabled skipped, then the default", func(t *testing.T) {
		mkSvc(t, team, "t1", openelb)
		waitIPs(t, team, "t1", "203.0.113.41")
		mkSvc(t, team, "t2", openelb)
		waitIPs(t, team, "t2", "203.0.113.40")
		mkSvc(t, team, "t3", openelb)
		waitIPs(t, team, "t3", "203.0.113.48")
		mkSvc(t, other, "o1", openelb)
		waitIPs(t, other, "o1", "203.0.113.49")

		// An address freed in the best Eip moves nobody.
		deleteSvc(t, team, "t1")
		stays(t, team, "t2", 1500*time.Millisecond, "203.0.113.40")
		waitIPs(t, team, "t3", "203.0.113.48")
		mkSvc(t, team, "t4", openelb)
		waitIPs(t, team, "t4", "203.0.113.41")
		// Enabling the disabled Eip with the best priority serves new
		// Services only.
		if err := patchEip(t, "pc-off", func(e *networkv1alpha2.Eip) { e.Spec.Disable = false }); err != nil {
			t.Fatal(err)
		}
		mkSvc(t, team, "t5", openelb)
		waitIPs(t, team, "t5", "203.0.113.42")
		stays(t, team, "t2", time.Second, "203.0.113.40")
		waitIPs(t, team, "t4", "203.0.113.41")
	})
	t.Run("namespaceSelector", func(t *testing.T) {
		web := namespace(t, "pc-web", map[string]string{"tier": "pc-web"})
		mkSvc(t, web, "w", openelb)
		waitIPs(t, web, "w", "203.0.113.56")
	})
	t.Run("default mode: a requested address in an Eip bound elsewhere is assigned, with a warning", func(t *testing.T) {
		c, w := warningClient(t)
		s := svcObj(other, "elsewhere", openelb, wantIP("203.0.113.46"))
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { deleteSvc(t, other, "elsewhere") })
		if !strings.Contains(w.all(), "the requested address 203.0.113.46 (Eip pc-elsewhere) is bound to other namespaces") {
			t.Errorf("warnings: %q", w.all())
		}
		waitIPs(t, other, "elsewhere", "203.0.113.46")
	})
	t.Cleanup(func() { deleteNamespace(t, team) })
}

// TestAddressOrder: lowest free first, IPv4 .0 and .255 last, every address
// counted; IPv6 pools of any size.
func TestAddressOrder(t *testing.T) {
	startController(t, instanceOpts{})
	mkEip(t, "ord-top", "203.0.113.250-203.0.113.255")
	mkEip(t, "ord-bottom", "203.0.113.0-203.0.113.3")
	mkEip(t, "ord-v6", "2001:db8:1::/64")
	ns := namespace(t, "ord", nil)
	for i, want := range []string{"203.0.113.250", "203.0.113.251", "203.0.113.252", "203.0.113.253", "203.0.113.254", "203.0.113.255"} {
		name := "top" + string(rune('a'+i))
		mkSvc(t, ns, name, openelb, eipAnn("ord-top"))
		waitIPs(t, ns, name, want)
	}
	for i, want := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.0"} {
		name := "bottom" + string(rune('a'+i))
		mkSvc(t, ns, name, openelb, eipAnn("ord-bottom"))
		waitIPs(t, ns, name, want)
	}
	waitEip(t, "ord-bottom", "full", func(e *networkv1alpha2.Eip) (bool, string) {
		s := e.Status
		return s.PoolSize == 4 && s.Usage == 4 && s.Occupied && condTrue(e, networkv1alpha2.EipConditionExhausted), yamlString(s)
	})
	mkSvc(t, ns, "one-too-many", openelb, eipAnn("ord-bottom"))
	waitEvent(t, ns, "one-too-many", "PoolExhausted", "Eip ord-bottom has no free address")
	waitEip(t, "ord-v6", "a saturated poolSize", func(e *networkv1alpha2.Eip) (bool, string) {
		s := e.Status
		return s.PoolSize == math.MaxInt64 && s.FirstIP == "2001:db8:1::" && s.LastIP == "2001:db8:1:0:ffff:ffff:ffff:ffff" && !s.V4 && s.Ready, yamlString(s)
	})
}

// TestDualStack: PreferDualStack gets one address per family (this envtest
// cluster is single-stack, so the apiserver refuses RequireDualStack; the
// allocator's tests cover it); SingleStack follows ipFamilies.
func TestDualStack(t *testing.T) {
	startController(t, instanceOpts{})
	mkEip(t, "ds-v4", "203.0.113.64/28", isDefault)
	mkEip(t, "ds-v6", "2001:db8:2::/64", isDefault) // one default per family
	ns := namespace(t, "ds", nil)
	prefer := func(s *corev1.Service) {
		p := corev1.IPFamilyPolicyPreferDualStack
		s.Spec.IPFamilyPolicy = &p
	}
	mkSvc(t, ns, "prefer", openelb, prefer)
	waitIPs(t, ns, "prefer", "203.0.113.64", "2001:db8:2::")
	got := getSvc(t, ns, "prefer")
	if got.Annotations[networkv1alpha2.AnnotationAllocatedFrom] != "ds-v4,ds-v6" || got.Labels[networkv1alpha2.LabelEip] != "ds-v4" {
		t.Errorf("allocated-from %q label %q", got.Annotations[networkv1alpha2.AnnotationAllocatedFrom], got.Labels[networkv1alpha2.LabelEip])
	}
	mkSvc(t, ns, "single", openelb)
	waitIPs(t, ns, "single", "203.0.113.65")
	mkSvc(t, ns, "requested", openelb, prefer, ann(networkv1alpha2.AnnotationRequestedIPs, "2001:db8:2::70, 203.0.113.70"))
	waitIPs(t, ns, "requested", "203.0.113.70", "2001:db8:2::70")
	mkSvc(t, ns, "named", openelb, prefer, eipAnn("ds-v6,ds-v4"))
	waitIPs(t, ns, "named", "203.0.113.66", "2001:db8:2::1")
	err := env.Client.Create(ctx, svcObj(ns, "wrong-family", openelb, wantIP("2001:db8:2::9")))
	if err == nil || !strings.Contains(err.Error(), "requested address 2001:db8:2::9 is IPv6, but the Service's ipFamilies are [IPv4]") {
		t.Errorf("single-stack IPv4 Service requesting IPv6: %v", err)
	}
}

// TestDualStackLaterPool: a PreferDualStack Service that got only IPv4
// (no IPv6 Eip yet) gets its IPv6 address as soon as an IPv6 Eip appears,
// without any change to the Service; the IPv4 address stays.
func TestDualStackLaterPool(t *testing.T) {
	startController(t, instanceOpts{})
	mkEip(t, "dsl-v4", "203.0.113.232/29", isDefault)
	ns := namespace(t, "dsl", nil)
	mkSvc(t, ns, "prefer", openelb, func(s *corev1.Service) {
		p := corev1.IPFamilyPolicyPreferDualStack
		s.Spec.IPFamilyPolicy = &p
	})
	waitIPs(t, ns, "prefer", "203.0.113.232")
	mkEip(t, "dsl-v6", "2001:db8:7::/64", isDefault)
	waitIPs(t, ns, "prefer", "203.0.113.232", "2001:db8:7::")
	deleteSvc(t, ns, "prefer") // before the Eips' cleanup: an Eip in use cannot be deleted
}
