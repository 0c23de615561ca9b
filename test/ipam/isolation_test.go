package ipam_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestNamespaceIsolation: with namespaceIsolation a Service never takes an
// address of an Eip bound to other namespaces, not even by naming it, and
// is told why (webhook denial; with the webhook down, an Event); sharing
// needs a key even within a namespace.
func TestNamespaceIsolation(t *testing.T) {
	startController(t, instanceOpts{class: isolatedClass, isolation: true})
	iso := class(isolatedClass)
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: objectMeta("iso-team")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNamespace(t, "iso-team") })
	mkEip(t, "iso-team", "203.0.113.184/29", boundTo("iso-team"))
	mkEip(t, "iso-open", "203.0.113.192/29")
	other := namespace(t, "iso-other", nil)

	for _, tt := range []struct {
		name string
		mods []svcMod
		want string
	}{
		{"requested address", []svcMod{iso, wantIP("203.0.113.186")}, "namespace isolation: the requested address 203.0.113.186 (Eip iso-team) is bound to other namespaces"},
		{"named Eip", []svcMod{iso, eipAnn("iso-team")}, "namespace isolation: Eip iso-team is bound to other namespaces"},
	} {
		err := env.Client.Create(ctx, svcObj(other, "x", tt.mods...))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			if err == nil {
				deleteSvc(t, other, "x")
			}
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	mkSvc(t, other, "open", iso, eipAnn("iso-open"))
	waitIPs(t, other, "open", "203.0.113.192")
	mkSvc(t, "iso-team", "own", iso, wantIP("203.0.113.186"))
	waitIPs(t, "iso-team", "own", "203.0.113.186")

	// Webhook down: the controller refuses and says why.
	withoutServiceWebhook(t, func() {
		mkSvc(t, other, "sneaky", iso, wantIP("203.0.113.187"))
	})
	waitEvent(t, other, "sneaky", "NamespaceIsolation", "Eip iso-team is bound to other namespaces")
	stays(t, other, "sneaky", time.Second)

	// Sharing needs a key even within the namespace.
	err := env.Client.Create(ctx, svcObj("iso-team", "share", iso, wantIP("203.0.113.186"), port(81)))
	if err == nil || !strings.Contains(err.Error(), "with namespace isolation, Services share an address only when both carry the same") {
		t.Errorf("share without key: %v", err)
	}
	if err := patchSvc(t, "iso-team", "own", shareKey("k")); err != nil {
		t.Fatal(err)
	}
	mkSvc(t, "iso-team", "share", iso, wantIP("203.0.113.186"), port(81), shareKey("k"))
	waitIPs(t, "iso-team", "share", "203.0.113.186")
}
