package bgp

import (
	"context"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/scheme"
)

// A migrated BgpPeer and BgpConf still carry OpenELB 0.6's finalizer: once
// deleted, the finalizer is released (and the object goes); objects that
// are not being deleted, or carry only other finalizers, are not touched.
func TestReleaseLegacyFinalizer(t *testing.T) {
	ctx := context.Background()
	now := metav1.Now()
	legacy := networkv1alpha2.FinalizerService
	deleting := bgpPeer("old", "198.51.100.1", func(p *networkv1alpha2.BgpPeer) {
		p.Finalizers = []string{legacy}
		p.DeletionTimestamp = &now
	})
	deletingConf := bgpConf("default", func(c *networkv1alpha2.BgpConf) {
		c.Finalizers = []string{"example.com/keep", legacy}
		c.DeletionTimestamp = &now
	})
	living := bgpPeer("living", "198.51.100.2", func(p *networkv1alpha2.BgpPeer) { p.Finalizers = []string{legacy} })
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(deleting, deletingConf, living).Build()

	for _, tt := range []struct {
		obj       client.Object
		wantWrite bool
	}{{deleting, true}, {deletingConf, true}, {living, false}} {
		if err := c.Get(ctx, client.ObjectKeyFromObject(tt.obj), tt.obj); err != nil {
			t.Fatal(err)
		}
		wrote, err := releaseLegacyFinalizer(ctx, c, tt.obj)
		if err != nil || wrote != tt.wantWrite {
			t.Errorf("%s: wrote %v, err %v; want wrote %v", tt.obj.GetName(), wrote, err, tt.wantWrite)
		}
	}
	var peer networkv1alpha2.BgpPeer
	if err := c.Get(ctx, client.ObjectKey{Name: "old"}, &peer); err == nil {
		t.Errorf("deleted BgpPeer still exists with finalizers %v", peer.Finalizers)
	}
	var conf networkv1alpha2.BgpConf
	if err := c.Get(ctx, client.ObjectKey{Name: "default"}, &conf); err != nil || !slices.Equal(conf.Finalizers, []string{"example.com/keep"}) {
		t.Errorf("BgpConf finalizers %v (%v), want only the other finalizer kept", conf.Finalizers, err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "living"}, &peer); err != nil || !slices.Equal(peer.Finalizers, []string{legacy}) {
		t.Errorf("living BgpPeer finalizers %v (%v), want untouched", peer.Finalizers, err)
	}
	// A second speaker finding the object gone or already released writes nothing.
	if wrote, err := releaseLegacyFinalizer(ctx, c, deleting); wrote || err != nil {
		t.Errorf("second release: wrote %v, err %v", wrote, err)
	}
}
