package ipam_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

// TestSharing: a requested address already in use is shared within a
// namespace when ports do not clash and externalTrafficPolicy agrees;
// across namespaces only with the same sharing key. The webhook denies a
// clash; with the webhook down the controller refuses it (Event, no
// address).
func TestSharing(t *testing.T) {
	startController(t, instanceOpts{})
	mkEip(t, "sh", "203.0.113.80/28")
	ns1 := namespace(t, "sh1", nil)
	ns2 := namespace(t, "sh2", nil)

	mkSvc(t, ns1, "a", openelb, wantIP("203.0.113.85"), port(80))
	waitIPs(t, ns1, "a", "203.0.113.85")
	mkSvc(t, ns1, "b", openelb, wantIP("203.0.113.85"), port(443))
	waitIPs(t, ns1, "b", "203.0.113.85")
	waitEip(t, "sh", "to record the shared address", func(e *networkv1alpha2.Eip) (bool, string) {
		return e.Status.Used["203.0.113.85"] == ns1+"/a;"+ns1+"/b" && e.Status.Usage == 1, yamlString(e.Status)
	})

	denied := []struct {
		name, ns, want string
		mods           []svcMod
	}{
		{"clash", ns1, "both use port TCP/80", []svcMod{port(80)}},
		{"etp", ns1, "different externalTrafficPolicy", []svcMod{port(8080), local}},
		{"other-ns", ns2, "share an address only when both carry the same openelb.kubesphere.io/allow-shared-ip key", []svcMod{port(81)}},
	}
	for _, d := range denied {
		mods := append([]svcMod{openelb, wantIP("203.0.113.85")}, d.mods...)
		err := env.Client.Create(ctx, svcObj(d.ns, d.name, mods...))
		if err == nil || !strings.Contains(err.Error(), "address 203.0.113.85 is held by") || !strings.Contains(err.Error(), d.want) {
			t.Errorf("%s: created or wrong message: %v", d.name, err)
		}
	}

	// The same key across namespaces.
	mkSvc(t, ns1, "keyed1", openelb, wantIP("203.0.113.86"), shareKey("k"), port(80))
	waitIPs(t, ns1, "keyed1", "203.0.113.86")
	mkSvc(t, ns2, "keyed2", openelb, wantIP("203.0.113.86"), shareKey("k"), port(81))
	waitIPs(t, ns2, "keyed2", "203.0.113.86")

	// A sharing key makes automatic allocation share too.
	mkSvc(t, ns1, "web1", openelb, eipAnn("sh"), shareKey("web"), port(80))
	first := waitAnyIP(t, ns1, "web1", 1)[0]
	mkSvc(t, ns1, "web2", openelb, eipAnn("sh"), shareKey("web"), port(443))
	waitIPs(t, ns1, "web2", first)

	// The webhook is down: the controller applies the same rules.
	withoutServiceWebhook(t, func() {
		mkSvc(t, ns1, "late", openelb, wantIP("203.0.113.85"), port(80))
	})
	waitEvent(t, ns1, "late", "AddressConflict", "both use port TCP/80")
	stays(t, ns1, "late", time.Second)
	waitIPs(t, ns1, "a", "203.0.113.85")
	waitIPs(t, ns1, "b", "203.0.113.85")
	// Once the clash is gone the later Service gets the address.
	if err := patchSvc(t, ns1, "late", func(s *corev1.Service) { s.Spec.Ports[0].Port = 8443; s.Spec.Ports[0].Name = "p8443" }); err != nil {
		t.Fatal(err)
	}
	waitIPs(t, ns1, "late", "203.0.113.85")
}
