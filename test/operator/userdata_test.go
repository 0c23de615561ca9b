package operator_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

// userData is what a user of an earlier OpenELB install owns: an Eip with
// its status, a BgpConf, a BgpPeer and a Service holding an address.
type userData struct {
	objs []client.Object // as read back after creation
}

var userSeq int

func createUserData(t *testing.T) *userData {
	t.Helper()
	ctx := context.Background()
	userSeq++
	suffix := fmt.Sprintf("-%d", userSeq)
	eip := &networkv1alpha2.Eip{
		ObjectMeta: metav1.ObjectMeta{Name: "pool" + suffix, Finalizers: []string{"finalizer.ipam.kubesphere.io/v1alpha1"}},
		Spec:       networkv1alpha2.EipSpec{Address: fmt.Sprintf("203.0.113.%d-203.0.113.%d", userSeq*10, userSeq*10+5), Protocol: "layer2", Interface: "eth0"},
	}
	conf := &networkv1alpha2.BgpConf{ObjectMeta: metav1.ObjectMeta{Name: "default" + suffix, Finalizers: []string{"finalizer.lb.kubesphere.io/v1alpha1"}}, Spec: networkv1alpha2.BgpConfSpec{As: 64512, RouterId: "198.51.100.1"}}
	peer := &networkv1alpha2.BgpPeer{
		ObjectMeta: metav1.ObjectMeta{Name: "tor" + suffix},
		Spec:       networkv1alpha2.BgpPeerSpec{Conf: &networkv1alpha2.PeerConf{PeerAs: 64513, NeighborAddress: "198.51.100.254"}},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web" + suffix, Annotations: map[string]string{
			"lb.kubesphere.io/v1alpha1": "openelb", "eip.openelb.kubesphere.io/v1alpha2": eip.Name,
		}, Finalizers: []string{"finalizer.lb.kubesphere.io/v1alpha1"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	ip := fmt.Sprintf("203.0.113.%d", userSeq*10)
	for _, o := range []client.Object{eip, conf, peer, svc} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatalf("create %T: %v", o, err)
		}
	}
	eip.Status = networkv1alpha2.EipStatus{Usage: 1, PoolSize: 6, Used: map[string]string{ip: "default/" + svc.Name}, FirstIP: ip, Ready: true, V4: true}
	if err := k8s.Status().Update(ctx, eip); err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	if err := k8s.Status().Update(ctx, svc); err != nil {
		t.Fatal(err)
	}
	u := &userData{}
	for _, o := range []client.Object{eip, conf, peer, svc} {
		fresh := o.DeepCopyObject().(client.Object)
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(o), fresh); err != nil {
			t.Fatal(err)
		}
		u.objs = append(u.objs, fresh)
	}
	t.Cleanup(func() { u.remove(t) })
	return u
}

// unchanged checks that nothing of the user's data was written: same
// resourceVersion, same spec and status.
func (u *userData) unchanged(t *testing.T) {
	t.Helper()
	for _, o := range u.objs {
		now := o.DeepCopyObject().(client.Object)
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(o), now); err != nil {
			t.Errorf("%T %s: %v", o, o.GetName(), err)
			continue
		}
		if now.GetResourceVersion() != o.GetResourceVersion() || !equality.Semantic.DeepEqual(now, o) {
			t.Errorf("%T %s was modified (resourceVersion %s -> %s)", o, o.GetName(), o.GetResourceVersion(), now.GetResourceVersion())
		}
	}
}

// keptWithoutFinalizers checks that the user's objects still exist with
// the same spec, status, labels and annotations, and that uninstalling
// released OpenELB's finalizers (nothing else would ever clear them).
func (u *userData) keptWithoutFinalizers(t *testing.T) {
	t.Helper()
	for _, o := range u.objs {
		now := o.DeepCopyObject().(client.Object)
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(o), now); err != nil {
			t.Errorf("%T %s is gone: %v", o, o.GetName(), err)
			continue
		}
		if len(now.GetFinalizers()) != 0 {
			t.Errorf("%T %s keeps finalizers %v after uninstall", o, o.GetName(), now.GetFinalizers())
		}
		want := o.DeepCopyObject().(client.Object)
		for _, x := range []client.Object{want, now} {
			x.SetFinalizers(nil)
			x.SetResourceVersion("")
			x.SetManagedFields(nil)
		}
		if !equality.Semantic.DeepEqual(now, want) {
			t.Errorf("%T %s changed beyond its finalizers", o, o.GetName())
		}
	}
}

// remove deletes the user data (after the OpenELB resource, whose Eip
// webhook would otherwise refuse: no controller serves it in this test).
func (u *userData) remove(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, o := range u.objs {
		cur := o.DeepCopyObject().(client.Object)
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(o), cur); err != nil {
			continue
		}
		orig := cur.DeepCopyObject().(client.Object)
		cur.SetFinalizers(nil)
		_ = k8s.Patch(ctx, cur, client.MergeFrom(orig))
		_ = k8s.Delete(ctx, cur)
	}
}

// dropNameRule removes the "must be named openelb" rule from the OpenELB
// CRD (as an old or hand-edited CRD would) and returns a function that puts
// it back.
func dropNameRule(t *testing.T) func() {
	t.Helper()
	ctx := context.Background()
	key := types.NamespacedName{Name: "openelbs.operator.openelb.kubesphere.io"}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := k8s.Get(ctx, key, crd); err != nil {
		t.Fatal(err)
	}
	schema := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	saved := schema.XValidations
	var kept apiextensionsv1.ValidationRules
	for _, r := range saved {
		if !strings.Contains(r.Rule, "metadata.name") {
			kept = append(kept, r)
		}
	}
	if len(kept) == len(saved) {
		t.Fatal("the OpenELB CRD has no name rule to drop")
	}
	schema.XValidations = kept
	if err := k8s.Update(ctx, crd); err != nil {
		t.Fatal(err)
	}
	return func() {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := k8s.Get(ctx, key, crd); err != nil {
			t.Error(err)
			return
		}
		crd.Spec.Versions[0].Schema.OpenAPIV3Schema.XValidations = saved
		if err := k8s.Update(ctx, crd); err != nil {
			t.Errorf("restore the OpenELB CRD: %v", err)
		}
	}
}

func pemBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block")
	}
	return block.Bytes
}
