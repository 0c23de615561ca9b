package ipam_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	networkv1alpha1 "github.com/openelb/openelb-operator/api/network/v1alpha1"
	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/ipam"
	"github.com/openelb/openelb-operator/internal/testenv"
	"github.com/openelb/openelb-operator/internal/webhooks"
)

// TestEipWebhook: every Eip admission rule with its message.
func TestEipWebhook(t *testing.T) {
	startController(t, instanceOpts{})
	mkEip(t, "wh-a", "203.0.113.144/29", isDefault)
	tests := []struct {
		name string
		eip  *networkv1alpha2.Eip
		want string
	}{
		{"garbage (schema)", eipObj("wh-bad", "foo"), "invalid eip address format"},
		{"reversed range", eipObj("wh-bad", "203.0.113.159-203.0.113.152"), "invalid eip address format: \"203.0.113.159-203.0.113.152\" is reversed"},
		{"IPv6 CIDR covering IPv4-mapped addresses", eipObj("wh-bad", "::/80"), "invalid eip address format: \"::/80\" overlaps ::ffff:0:0/96 (IPv4-mapped IPv6 addresses)"},
		{"mixed families (schema)", eipObj("wh-bad", "203.0.113.152-2001:db8::1"), "invalid eip address format"},
		{"three-part range (schema)", eipObj("wh-bad", "203.0.113.152-203.0.113.153-203.0.113.154"), "invalid eip address format"},
		{"layer2 without interface", eipObj("wh-bad", "203.0.113.152/30", func(e *networkv1alpha2.Eip) { e.Spec.Protocol = "layer2" }), "if protocol is layer2 or vip, interface should not be empty"},
		{"overlap", eipObj("wh-bad", "203.0.113.150-203.0.113.155"), "eip address overlap with wh-a (203.0.113.144-203.0.113.151)"},
		{"second default of the family", eipObj("wh-bad", "203.0.113.152/30", isDefault), "already exists a default EIP: wh-a is the default IPv4 Eip"},
	}
	for _, tt := range tests {
		err := env.Client.Create(ctx, tt.eip)
		if err == nil {
			deleteEip(t, tt.eip.Name)
			t.Errorf("%s: admitted", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}

	t.Run("the record holds the Eip's uid", func(t *testing.T) {
		var cm corev1.ConfigMap
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: controllerNS, Name: webhooks.RecordName}, &cm); err != nil {
			t.Fatal(err)
		}
		uid := string(getEip(t, "wh-a").UID)
		if uid == "" || !strings.Contains(cm.Data["wh-a"], uid) || !strings.Contains(cm.Data["wh-a"], "203.0.113.144-203.0.113.151") {
			t.Errorf("record entry %q, uid %q", cm.Data["wh-a"], uid)
		}
	})
	t.Run("a default Eip per family", func(t *testing.T) {
		mkEip(t, "wh-v6", "2001:db8:3::/64", isDefault)
	})
	t.Run("a protocol the OpenELB resource does not enable is admitted with a warning", func(t *testing.T) {
		c, w := warningClient(t)
		e := eipObj("wh-vip", "203.0.113.152/30", func(e *networkv1alpha2.Eip) { e.Spec.Protocol = "vip"; e.Spec.Interface = "eth0" })
		if err := c.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { deleteEip(t, "wh-vip") })
		if !strings.Contains(w.all(), "protocol vip is not enabled in the OpenELB resource") {
			t.Errorf("warnings %q", w.all())
		}
	})
	t.Run("an address change that overlaps is refused", func(t *testing.T) {
		mkEip(t, "wh-b", "203.0.113.156/30")
		err := patchEip(t, "wh-b", func(e *networkv1alpha2.Eip) { e.Spec.Address = "203.0.113.150-203.0.113.159" })
		if err == nil || !strings.Contains(err.Error(), "eip address overlap with wh-a") {
			t.Errorf("update: %v", err)
		}
	})
	t.Run("dry-run reserves nothing", func(t *testing.T) {
		if err := env.Client.Create(ctx, eipObj("wh-dry", "203.0.113.160/29"), client.DryRunAll); err != nil {
			t.Fatal(err)
		}
		mkEip(t, "wh-real", "203.0.113.160/29")
	})
	t.Run("v1alpha1 writes are validated too (matchPolicy Equivalent)", func(t *testing.T) {
		old := &networkv1alpha1.Eip{}
		old.Name = "wh-old"
		old.Spec.Address = "203.0.113.148/30"
		err := env.Client.Create(ctx, old)
		if err == nil || !strings.Contains(err.Error(), "eip address overlap with wh-a") {
			t.Errorf("v1alpha1 create: %v", err)
		}
	})
	t.Run("deleted Eips free their range at once", func(t *testing.T) {
		mkEip(t, "wh-tmp", "203.0.113.168/29")
		deleteEip(t, "wh-tmp")
		mkEip(t, "wh-tmp2", "203.0.113.168/29")
	})
}

// TestEipOverlapRace: concurrent overlapping creates, through the apiserver
// and directly across two record writers with separate clients (two
// controller replicas), never both succeed.
func TestEipOverlapRace(t *testing.T) {
	startController(t, instanceOpts{})
	t.Run("through the apiserver", func(t *testing.T) {
		for round := 0; round < 3; round++ {
			const n = 6
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					c, err := client.New(newConfig(), client.Options{Scheme: env.Scheme})
					if err != nil {
						errs[i] = err
						return
					}
					// Different names, overlapping ranges.
					errs[i] = c.Create(ctx, eipObj(fmt.Sprintf("race-%d-%d", round, i), fmt.Sprintf("203.0.113.%d-203.0.113.%d", 170+i, 176)))
				}(i)
			}
			wg.Wait()
			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
					deleteEip(t, fmt.Sprintf("race-%d-%d", round, i))
				case !strings.Contains(err.Error(), "eip address overlap with race-"):
					t.Errorf("round %d create %d: %v", round, i, err)
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d of %d overlapping creates succeeded", round, won, n)
			}
		}
	})
	t.Run("two replicas' record writers", func(t *testing.T) {
		replica := func() *webhooks.Record {
			c, err := client.New(newConfig(), client.Options{Scheme: env.Scheme})
			if err != nil {
				t.Fatal(err)
			}
			return &webhooks.Record{Client: c, Reader: c, Namespace: controllerNS, Grace: time.Hour}
		}
		a, b := replica(), replica()
		rng, _ := ipam.ParseRange("203.0.113.176/29")
		for round := 0; round < 10; round++ {
			var wg sync.WaitGroup
			denials := make([]string, 2)
			for i, r := range []*webhooks.Record{a, b} {
				wg.Add(1)
				go func(i int, r *webhooks.Record) {
					defer wg.Done()
					msg, err := r.Reserve(context.Background(), webhooks.Claim{Name: fmt.Sprintf("rep-%d-%d", round, i), UID: types.UID(fmt.Sprint(round, i)), Range: rng}, false)
					if err != nil {
						t.Error(err)
					}
					denials[i] = msg
				}(i, r)
			}
			wg.Wait()
			if (denials[0] == "") == (denials[1] == "") {
				t.Fatalf("round %d: denials %q: exactly one claim must win", round, denials)
			}
			for i := range 2 {
				if err := a.Remove(ctx, fmt.Sprintf("rep-%d-%d", round, i), types.UID(fmt.Sprint(round, i))); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// TestServiceWebhook: malformed requests are denied with the parse error;
// Services that are not ours are not looked at.
func TestServiceWebhook(t *testing.T) {
	startController(t, instanceOpts{})
	ns := namespace(t, "swh", nil)
	tests := []struct {
		name string
		mods []svcMod
		want string
	}{
		{"bad address annotation", []svcMod{openelb, wantIP("203.0.113.300")}, "annotation eip.openelb.kubesphere.io/v1alpha1: invalid annotation: \"203.0.113.300\" is not an IP address"},
		{"bad dual-stack annotation", []svcMod{openelb, ann(networkv1alpha2.AnnotationRequestedIPs, "203.0.113.1,203.0.113.2")}, "two IPv4 addresses, at most one per family"},
		{"bad Eip list", []svcMod{openelb, eipAnn("a,")}, "empty Eip name"},
		{"too many Eips", []svcMod{openelb, eipAnn("a,b,c")}, "at most two Eip names"},
		{"requested family not in ipFamilies", []svcMod{openelb, wantIP("2001:db8::1")}, "is IPv6, but the Service's ipFamilies are [IPv4]"},
	}
	for _, tt := range tests {
		err := env.Client.Create(ctx, svcObj(ns, "bad", tt.mods...))
		if err == nil {
			deleteSvc(t, ns, "bad")
			t.Errorf("%s: admitted", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	// Not ours: nobody looks at it.
	mkSvc(t, ns, "metallb", class("metallb.io/metallb"), wantIP("203.0.113.300"))
	// Ours, webhook down: the controller reports the same problem.
	withoutServiceWebhook(t, func() {
		mkSvc(t, ns, "late", openelb, wantIP("203.0.113.300"))
	})
	waitEvent(t, ns, "late", "InvalidRequest", "is not an IP address")
}

// TestWebhookManifests: the manifests generated from the webhook markers
// carry the names, paths and policies of docs/design/0003.
func TestWebhookManifests(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "webhook", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.Unmarshal(data, &vwc); err != nil {
		t.Fatal(err)
	}
	byName := map[string]admissionregistrationv1.ValidatingWebhook{}
	for _, w := range vwc.Webhooks {
		byName[w.Name] = w
	}
	eip, svc := byName[webhooks.EipName], byName[webhooks.ServiceName]
	if eip.ClientConfig.Service == nil || eip.ClientConfig.Service.Path == nil || *eip.ClientConfig.Service.Path != webhooks.EipPath ||
		*eip.FailurePolicy != admissionregistrationv1.Fail || *eip.SideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun ||
		*eip.MatchPolicy != admissionregistrationv1.Equivalent || len(eip.Rules) != 1 || len(eip.Rules[0].Operations) != 3 {
		t.Errorf("eip webhook: %+v", eip)
	}
	if svc.ClientConfig.Service == nil || svc.ClientConfig.Service.Path == nil || *svc.ClientConfig.Service.Path != webhooks.ServicePath ||
		*svc.FailurePolicy != admissionregistrationv1.Ignore || *svc.SideEffects != admissionregistrationv1.SideEffectClassNone ||
		svc.TimeoutSeconds == nil || *svc.TimeoutSeconds != 5 {
		t.Errorf("service webhook: %+v", svc)
	}
}
