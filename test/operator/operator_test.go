package operator_test

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
	"github.com/openelb/openelb-operator/internal/certs"
	"github.com/openelb/openelb-operator/internal/render"
)

// TestCreate: one OpenELB resource yields every object, with the right
// fields, owned by it; status follows the workloads' readiness.
func TestCreate(t *testing.T) {
	ctx := context.Background()
	upgradeable.reset()
	createOpenELB(t, nil)
	waitObjects(t, allObjects(true))

	e := waitCondition(t, operatorv1alpha1.ConditionProgressing, metav1.ConditionTrue, "RollingOut")
	eventually(t, wait, "counts of a fresh install", func() string {
		e = getELB(t)
		// Two nodes, both eligible (the control-plane taint is tolerated).
		if e.Status.Controller != (operatorv1alpha1.ComponentStatus{Desired: 2}) || e.Status.Speaker != (operatorv1alpha1.ComponentStatus{Desired: 2}) {
			return fmt.Sprintf("controller %+v speaker %+v", e.Status.Controller, e.Status.Speaker)
		}
		return ""
	})
	// Zero counts are written too (kubectl's READY columns show 0, not
	// nothing).
	raw := &unstructured.Unstructured{}
	raw.SetGroupVersionKind(operatorv1alpha1.GroupVersion.WithKind("OpenELB"))
	if err := k8s.Get(ctx, elbKey, raw); err != nil {
		t.Fatal(err)
	}
	for _, comp := range []string{"controller", "speaker"} {
		if _, found, _ := unstructured.NestedInt64(raw.Object, "status", comp, "ready"); !found {
			t.Errorf("status.%s.ready not written", comp)
		}
	}
	if !slices.Contains(e.Finalizers, operatorv1alpha1.Finalizer) {
		t.Errorf("finalizers %v", e.Finalizers)
	}
	if c := condition(e, operatorv1alpha1.ConditionAvailable); c.Status != metav1.ConditionFalse || c.Reason != "ControllerNotReady" {
		t.Errorf("Available before any pod is ready: %+v", c)
	}

	// Every object carries our labels and a controller reference.
	for _, k := range render.Catalog(ns) {
		u, _ := exists(t, k)
		ref := metav1.GetControllerOf(u)
		if ref == nil || ref.Kind != "OpenELB" || ref.UID != e.UID || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("%s: controller reference %+v", k, ref)
		}
		if u.GetLabels()[render.LabelManagedBy] != render.ManagedBy {
			t.Errorf("%s: labels %v", k, u.GetLabels())
		}
	}

	ds, _ := getDaemonSet(t)
	if !slices.Equal(ds.Spec.Template.Spec.Containers[0].Args, render.SpeakerArgs(e)) {
		t.Errorf("speaker args %v", ds.Spec.Template.Spec.Containers[0].Args)
	}
	if !ds.Spec.Template.Spec.HostNetwork || ds.Spec.Template.Spec.Containers[0].Image != image {
		t.Errorf("speaker pod hostNetwork %v image %s", ds.Spec.Template.Spec.HostNetwork, ds.Spec.Template.Spec.Containers[0].Image)
	}
	d, _ := getDeployment(t)
	if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--leader-elect") || !slices.Contains(args, "--enabled-protocols=bgp,layer2") {
		t.Errorf("controller args %v", args)
	}

	// The webhook configuration trusts the CA that signed the controller's
	// serving certificate, for the Service's name.
	secret := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: render.ControllerCertName}, secret); err != nil {
		t.Fatal(err)
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := k8s.Get(ctx, types.NamespacedName{Name: render.WebhookConfigName}, vwc); err != nil {
		t.Fatal(err)
	}
	verifyServing(t, vwc.Webhooks[0].ClientConfig.CABundle, secret.Data[certs.TLSCert], render.ControllerName+"."+ns+".svc")
	key := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: render.SpeakerKeyName}, key); err != nil {
		t.Fatal(err)
	}
	if raw, err := hex.DecodeString(string(key.Data["key"])); err != nil || len(raw) != 32 {
		t.Fatalf("speaker key %q is not 32 hex-encoded random bytes (%v)", key.Data["key"], err)
	}

	markReady(t)
	e = waitCondition(t, operatorv1alpha1.ConditionAvailable, metav1.ConditionTrue, "AsExpected")
	waitCondition(t, operatorv1alpha1.ConditionProgressing, metav1.ConditionFalse, "AsExpected")
	e = waitCondition(t, operatorv1alpha1.ConditionDegraded, metav1.ConditionFalse, "AsExpected")
	if e.Status.Controller != (operatorv1alpha1.ComponentStatus{Desired: 2, Ready: 2, Updated: 2}) ||
		e.Status.Speaker != (operatorv1alpha1.ComponentStatus{Desired: 2, Ready: 2, Updated: 2}) {
		t.Errorf("counts controller %+v speaker %+v", e.Status.Controller, e.Status.Speaker)
	}
	if h := upgradeable.reset(); len(h) < 2 || h[0] != metav1.ConditionFalse || h[len(h)-1] != metav1.ConditionTrue {
		t.Errorf("OLM Upgradeable history %v: want False during the rollout, then True", h)
	}

	// A reconcile that changes nothing writes no status: repair a deleted
	// ServiceAccount and check the resource did not change.
	rv := getELB(t).ResourceVersion
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.SpeakerName}}
	if err := k8s.Delete(ctx, sa); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "ServiceAccount recreated", func() string {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(sa), sa); err != nil || sa.DeletionTimestamp != nil {
			return fmt.Sprint(err)
		}
		return ""
	})
	time.Sleep(500 * time.Millisecond)
	if now := getELB(t).ResourceVersion; now != rv {
		t.Errorf("status rewritten without a change: resourceVersion %s -> %s (%s)", rv, now, conditionsString(getELB(t)))
	}
}

func verifyServing(t *testing.T, bundle, certPEM []byte, dnsName string) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		t.Fatal("caBundle holds no certificate")
	}
	leaf, err := x509.ParseCertificate(pemBytes(t, certPEM))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: dnsName}); err != nil {
		t.Fatalf("serving certificate not trusted by the webhook caBundle for %s: %v", dnsName, err)
	}
}

// TestToggleModes: each speaker mode switches the DaemonSet's args; with
// every mode off the speaker objects go, and come back.
func TestToggleModes(t *testing.T) {
	off, on := false, true
	createOpenELB(t, nil)
	waitObjects(t, allObjects(true))
	e := getELB(t)
	waitSpeakerArgs(t, render.SpeakerArgs(e))

	steps := []struct {
		name string
		mut  func(*operatorv1alpha1.OpenELBSpec)
		want []string // args that must be present
		not  []string // args that must be absent
	}{
		{"layer2 off", func(s *operatorv1alpha1.OpenELBSpec) { s.Speaker.Layer2.Enabled = &off },
			[]string{"--enable-layer2=false", "--enable-bgp=true", "--enable-keepalived-vip=false"}, nil},
		{"vip on with an interface", func(s *operatorv1alpha1.OpenELBSpec) {
			s.Speaker.VIP.Enabled = &on
			s.Speaker.VIP.Interfaces = []string{"eth1"}
			s.Speaker.VIP.AdvertIntervalMillis = 200
		}, []string{"--enable-keepalived-vip=true", "--vip-interfaces=eth1", "--vip-advert-interval=200ms"}, nil},
		{"bgp off, layer2 on with refresh", func(s *operatorv1alpha1.OpenELBSpec) {
			s.Speaker.BGP.Enabled = &off
			s.Speaker.Layer2.Enabled = &on
			s.Speaker.Layer2.GratuitousRefreshSeconds = 60
		}, []string{"--enable-bgp=false", "--enable-layer2=true", "--gratuitous-refresh=1m0s", "--enable-keepalived-vip=true"}, nil},
		{"vip off", func(s *operatorv1alpha1.OpenELBSpec) { s.Speaker.VIP.Enabled = &off },
			[]string{"--enable-keepalived-vip=false"}, []string{"--vip-interfaces=eth1", "--vip-advert-interval=200ms"}},
	}
	for _, st := range steps {
		patchSpec(t, st.mut)
		e := getELB(t)
		ds := waitSpeakerArgs(t, render.SpeakerArgs(e))
		args := ds.Spec.Template.Spec.Containers[0].Args
		for _, a := range st.want {
			if !slices.Contains(args, a) {
				t.Errorf("%s: %s missing from %v", st.name, a, args)
			}
		}
		for _, a := range st.not {
			if slices.Contains(args, a) {
				t.Errorf("%s: %s still in %v", st.name, a, args)
			}
		}
		eventually(t, wait, st.name+": controller --enabled-protocols", func() string {
			d, err := getDeployment(t)
			if err != nil {
				return err.Error()
			}
			if want := "--enabled-protocols=" + render.EnabledProtocols(e); !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, want) {
				return fmt.Sprintf("%v lacks %s", d.Spec.Template.Spec.Containers[0].Args, want)
			}
			return ""
		})
	}

	// Every mode off: IPAM only, no speaker objects at all.
	patchSpec(t, func(s *operatorv1alpha1.OpenELBSpec) { s.Speaker.Layer2.Enabled = &off })
	waitObjects(t, allObjects(false))
	// And back.
	patchSpec(t, func(s *operatorv1alpha1.OpenELBSpec) { s.Speaker.BGP.Enabled = &on })
	waitObjects(t, allObjects(true))
}

// TestDriftRepair: deleted or edited objects are put back.
func TestDriftRepair(t *testing.T) {
	ctx := context.Background()
	createOpenELB(t, nil)
	waitObjects(t, allObjects(true))
	e := getELB(t)
	want := render.SpeakerArgs(e)
	ds := waitSpeakerArgs(t, want)

	// A deleted DaemonSet is recreated.
	if err := k8s.Delete(ctx, ds); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "DaemonSet recreated", func() string {
		now, err := getDaemonSet(t)
		if err != nil {
			return err.Error()
		}
		if now.UID == ds.UID {
			return "still the old DaemonSet"
		}
		return ""
	})

	// An edited container argument is reverted.
	ds, _ = getDaemonSet(t)
	ds.Spec.Template.Spec.Containers[0].Args = append(slices.Clone(want), "--enable-keepalived-vip=true")
	ds.Spec.Template.Spec.Containers[0].Args[1] = "--log-level=error"
	if err := k8s.Update(ctx, ds, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	waitSpeakerArgs(t, want)

	// Edited replicas and webhook CA bundle are reverted; a deleted
	// ClusterRole is recreated.
	d, _ := getDeployment(t)
	orig := d.DeepCopy()
	one := int32(1)
	d.Spec.Replicas = &one
	if err := k8s.Patch(ctx, d, client.MergeFrom(orig), client.FieldOwner("kubectl-scale")); err != nil {
		t.Fatal(err)
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := k8s.Get(ctx, types.NamespacedName{Name: render.WebhookConfigName}, vwc); err != nil {
		t.Fatal(err)
	}
	goodBundle := vwc.Webhooks[0].ClientConfig.CABundle
	vwc.Webhooks[0].ClientConfig.CABundle = []byte("garbage")
	if err := k8s.Update(ctx, vwc, client.FieldOwner("someone")); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: render.SpeakerName}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "drift reverted", func() string {
		d, err := getDeployment(t)
		if err != nil || *d.Spec.Replicas != 2 {
			return fmt.Sprintf("replicas %v %v", d.Spec.Replicas, err)
		}
		if err := k8s.Get(ctx, types.NamespacedName{Name: render.WebhookConfigName}, vwc); err != nil || string(vwc.Webhooks[0].ClientConfig.CABundle) != string(goodBundle) {
			return fmt.Sprintf("caBundle not restored (%v)", err)
		}
		cr := &rbacv1.ClusterRole{}
		if err := k8s.Get(ctx, types.NamespacedName{Name: render.SpeakerName}, cr); err != nil || cr.DeletionTimestamp != nil {
			return fmt.Sprintf("ClusterRole: %v", err)
		}
		return ""
	})
}

// TestLegacyLeftoversRemoved: OpenELB 0.5's keepalived DaemonSet and
// ConfigMap in the install namespace are removed and reported.
func TestLegacyLeftoversRemoved(t *testing.T) {
	ctx := context.Background()
	lbl := map[string]string{"app": "openelb-keepalive-vip"}
	legacy := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "openelb-keepalive-vip"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec:       corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{Name: "keepalived", Image: "kubesphere/kube-keepalived-vip:0.35"}}},
			},
		},
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "openelb-vip-configmap"}, Data: map[string]string{"203.0.113.5": "default/svc"}}
	for _, o := range []client.Object{legacy, cm} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	createOpenELB(t, nil)
	eventually(t, wait, "0.5 leftovers removed", func() string {
		for _, o := range []client.Object{&appsv1.DaemonSet{}, &corev1.ConfigMap{}} {
			name := "openelb-keepalive-vip"
			if _, ok := o.(*corev1.ConfigMap); ok {
				name = "openelb-vip-configmap"
			}
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, o); !apierrors.IsNotFound(err) {
				return fmt.Sprintf("%T %s still there (%v)", o, name, err)
			}
		}
		return ""
	})
	e := waitCondition(t, operatorv1alpha1.ConditionLeftoversRemoved, metav1.ConditionTrue, "OpenELB05KeepalivedRemoved")
	if c := condition(e, operatorv1alpha1.ConditionLeftoversRemoved); !strings.Contains(c.Message, "openelb-keepalive-vip") || !strings.Contains(c.Message, "openelb-vip-configmap") {
		t.Errorf("condition message %q does not list both objects", c.Message)
	}
	waitEvent(t, "OpenELB05KeepalivedRemoved", "openelb-keepalive-vip")
	// The operator's own objects are untouched by the cleanup.
	waitObjects(t, allObjects(true))
}

// TestDeleteLeavesNothing: deleting the OpenELB resource removes every
// object the operator created, cluster-scoped ones included, and keeps the
// user's Eips, BgpConfs, BgpPeers and Services, releasing only OpenELB's
// finalizers on them.
func TestDeleteLeavesNothing(t *testing.T) {
	before := clusterSnapshot(t)
	user := createUserData(t)
	createOpenELB(t, nil)
	waitObjects(t, allObjects(true))
	markReady(t)
	waitCondition(t, operatorv1alpha1.ConditionAvailable, metav1.ConditionTrue, "AsExpected")
	if during := clusterSnapshot(t); len(during) <= len(before) {
		t.Fatalf("snapshot does not see the install: %d objects before, %d during", len(before), len(during))
	}
	// What the controller and the vip speakers create for themselves (none
	// runs here).
	for _, o := range []client.Object{
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "openelb-controller"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "openelb-eip-ranges"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "openelb-vip-groups"}},
	} {
		if err := k8s.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}

	deleteOpenELB(t)
	after := clusterSnapshot(t)
	if !slices.Equal(before, after) {
		t.Errorf("objects left after deleting the OpenELB resource:\nbefore: %v\nafter:  %v", before, after)
	}
	user.keptWithoutFinalizers(t)
}

// TestUpstreamMigration: an upstream install is reported and nothing is
// installed; migrateFromUpstream removes it, installs ours and leaves the
// user's Eips and Service addresses untouched.
func TestUpstreamMigration(t *testing.T) {
	ctx := context.Background()
	user := createUserData(t)
	upstreamLabels := map[string]string{"app": "openelb", "component": "controller"}
	upstream := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "openelb-controller", Labels: upstreamLabels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: upstreamLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: upstreamLabels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "openelb-controller", Image: "kubesphere/openelb-controller:v0.6.0"}}},
			},
		},
	}
	spkLabels := map[string]string{"app": "openelb", "component": "speaker"}
	upstreamSpeaker := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "openelb-speaker", Labels: spkLabels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: spkLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: spkLabels},
				Spec:       corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{Name: "openelb-speaker", Image: "kubesphere/openelb-speaker:v0.6.0"}}},
			},
		},
	}
	upstreamWebhook := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "openelb-admission"}}
	for _, o := range []client.Object{upstream, upstreamSpeaker, upstreamWebhook} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	upgradeable.reset()
	createOpenELB(t, nil)

	e := waitCondition(t, operatorv1alpha1.ConditionDegraded, metav1.ConditionTrue, "UpstreamOpenELBFound")
	msg := condition(e, operatorv1alpha1.ConditionDegraded).Message
	for _, want := range []string{"Deployment " + ns + "/openelb-controller", "DaemonSet default/openelb-speaker", "migrateFromUpstream: true"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Degraded message %q lacks %q", msg, want)
		}
	}
	waitEvent(t, "UpstreamOpenELBFound", "migrateFromUpstream")
	if c := condition(e, operatorv1alpha1.ConditionAvailable); c.Status != metav1.ConditionFalse {
		t.Errorf("Available %+v with an upstream install", c)
	}
	// Nothing of ours was applied over the upstream objects.
	time.Sleep(300 * time.Millisecond)
	if _, ok := exists(t, render.Key{GroupVersionKind: appsv1.SchemeGroupVersion.WithKind("DaemonSet"), Namespace: ns, Name: render.SpeakerName}); ok {
		t.Error("speaker DaemonSet created next to an upstream install")
	}
	d := &appsv1.Deployment{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(upstream), d); err != nil || metav1.GetControllerOf(d) != nil || d.Spec.Template.Spec.Containers[0].Image != upstream.Spec.Template.Spec.Containers[0].Image {
		t.Errorf("upstream Deployment modified before migration: %v", err)
	}

	patchSpec(t, func(s *operatorv1alpha1.OpenELBSpec) { s.MigrateFromUpstream = true })
	e = waitCondition(t, operatorv1alpha1.ConditionLeftoversRemoved, metav1.ConditionTrue, "UpstreamRemoved")
	for _, want := range []string{"DaemonSet default/openelb-speaker", "ValidatingWebhookConfiguration openelb-admission"} {
		if !strings.Contains(condition(e, operatorv1alpha1.ConditionLeftoversRemoved).Message, want) {
			t.Errorf("LeftoversRemoved message %q lacks %q", condition(e, operatorv1alpha1.ConditionLeftoversRemoved).Message, want)
		}
	}
	waitEvent(t, "UpstreamRemoved", "openelb-speaker")
	waitObjects(t, allObjects(true))
	eventually(t, wait, "our controller replaces upstream's", func() string {
		d, err := getDeployment(t)
		if err != nil || !isOurs(d) {
			return fmt.Sprintf("not ours yet (%v)", err)
		}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(upstreamSpeaker), &appsv1.DaemonSet{}); !apierrors.IsNotFound(err) {
			return "upstream speaker still there"
		}
		return ""
	})
	waitCondition(t, operatorv1alpha1.ConditionDegraded, metav1.ConditionFalse, "AsExpected")
	user.unchanged(t)
	if h := upgradeable.reset(); !slices.Contains(h, metav1.ConditionFalse) {
		t.Errorf("OLM Upgradeable never False during the migration: %v", h)
	}
}

func isOurs(o metav1.Object) bool {
	ref := metav1.GetControllerOf(o)
	return ref != nil && ref.Kind == "OpenELB"
}

// TestDegradedReasons: a failing pod is named with its reason; a speaker
// selector that matches no node is reported.
func TestDegradedReasons(t *testing.T) {
	ctx := context.Background()
	createOpenELB(t, nil)
	waitObjects(t, allObjects(true))
	markReady(t)
	waitCondition(t, operatorv1alpha1.ConditionDegraded, metav1.ConditionFalse, "AsExpected")

	ds, _ := getDaemonSet(t)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: "openelb-speaker-x7k2p", Labels: ds.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))},
		},
		Spec: *ds.Spec.Template.Spec.DeepCopy(),
	}
	p.Spec.NodeName = "worker-1"
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k8s.Delete(ctx, p, client.GracePeriodSeconds(0))
	})
	p.Status.Phase = corev1.PodPending
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "speaker", Image: image,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "` + image + `"`}},
	}}
	if err := k8s.Status().Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	e := waitCondition(t, operatorv1alpha1.ConditionDegraded, metav1.ConditionTrue, "ImagePullBackOff")
	msg := condition(e, operatorv1alpha1.ConditionDegraded).Message
	for _, want := range []string{"openelb-speaker-x7k2p", "worker-1", "Back-off pulling image"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Degraded message %q lacks %q", msg, want)
		}
	}
	if err := k8s.Delete(ctx, p, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, operatorv1alpha1.ConditionDegraded, metav1.ConditionFalse, "AsExpected")

	patchSpec(t, func(s *operatorv1alpha1.OpenELBSpec) {
		s.Speaker.NodeSelector = map[string]string{"openelb.kubesphere.io/speaker": "true"}
	})
	e = waitCondition(t, operatorv1alpha1.ConditionDegraded, metav1.ConditionTrue, "NoNodeMatchesSpeakerSelector")
	// Labelling a node fixes it, without touching the resource.
	n := &corev1.Node{}
	if err := k8s.Get(ctx, types.NamespacedName{Name: "worker-1"}, n); err != nil {
		t.Fatal(err)
	}
	orig := n.DeepCopy()
	n.Labels["openelb.kubesphere.io/speaker"] = "true"
	if err := k8s.Patch(ctx, n, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n := &corev1.Node{}
		if err := k8s.Get(ctx, types.NamespacedName{Name: "worker-1"}, n); err == nil {
			orig := n.DeepCopy()
			delete(n.Labels, "openelb.kubesphere.io/speaker")
			_ = k8s.Patch(ctx, n, client.MergeFrom(orig))
		}
	})
	eventually(t, wait, "Degraded cleared by a node label", func() string {
		e := getELB(t)
		if c := condition(e, operatorv1alpha1.ConditionDegraded); c.Reason == "NoNodeMatchesSpeakerSelector" {
			return conditionsString(e)
		}
		return ""
	})
}

// TestSingletonBypass: when the CRD's name rule is bypassed, a second
// resource is reported (status and Event) and ignored.
func TestSingletonBypass(t *testing.T) {
	ctx := context.Background()
	restore := dropNameRule(t)
	defer restore()
	other := &operatorv1alpha1.OpenELB{ObjectMeta: metav1.ObjectMeta{Name: "second"}}
	eventually(t, wait, "create a second OpenELB once the rule is gone", func() string {
		if err := k8s.Create(ctx, other); err != nil {
			return err.Error()
		}
		return ""
	})
	defer func() { _ = k8s.Delete(ctx, other) }()
	var e operatorv1alpha1.OpenELB
	eventually(t, wait, "second resource reported", func() string {
		if err := k8s.Get(ctx, types.NamespacedName{Name: "second"}, &e); err != nil {
			return err.Error()
		}
		if c := condition(&e, operatorv1alpha1.ConditionDegraded); c == nil || c.Reason != "IncorrectResourceName" || c.Status != metav1.ConditionTrue {
			return conditionsString(&e)
		}
		return ""
	})
	if len(e.Finalizers) != 0 {
		t.Errorf("finalizers on an ignored resource: %v", e.Finalizers)
	}
	waitEvent(t, "IncorrectResourceName", "named 'openelb'")
	if _, ok := exists(t, render.Key{GroupVersionKind: appsv1.SchemeGroupVersion.WithKind("Deployment"), Namespace: ns, Name: render.ControllerName}); ok {
		t.Error("an ignored resource installed the controller")
	}
}

// TestSpeakerKeyKept: the speaker key is generated once; an existing key
// (here one created before the operator, as the lab does) is adopted and
// survives spec changes.
func TestSpeakerKeyKept(t *testing.T) {
	ctx := context.Background()
	existing := []byte("0123456789abcdef0123456789abcdef")
	pre := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.SpeakerKeyName}, Data: map[string][]byte{"key": existing}}
	if err := k8s.Create(ctx, pre); err != nil {
		t.Fatal(err)
	}
	createOpenELB(t, nil)
	check := func(what string) {
		t.Helper()
		eventually(t, wait, what, func() string {
			s := &corev1.Secret{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(pre), s); err != nil {
				return err.Error()
			}
			if string(s.Data["key"]) != string(existing) || !isOurs(s) {
				return fmt.Sprintf("key %q, ours %v", s.Data["key"], isOurs(s))
			}
			ds, err := getDaemonSet(t)
			if err != nil {
				return err.Error()
			}
			if h := ds.Spec.Template.Annotations[render.SpeakerKeyHashAnnotation]; h != render.KeyHash(existing) {
				return "speaker pods not keyed with the existing key: " + h
			}
			return ""
		})
	}
	check("existing key adopted")
	patchSpec(t, func(s *operatorv1alpha1.OpenELBSpec) { s.LogLevel = "debug" })
	waitSpeakerArgs(t, render.SpeakerArgs(getELB(t)))
	check("key kept across a spec change")
}

// TestDeleteWaitsForSpeakers: on uninstall the speaker DaemonSet goes
// first; the speakers' permissions stay until their pods are gone (so they
// can withdraw announcements and stop keepalived), then everything goes.
func TestDeleteWaitsForSpeakers(t *testing.T) {
	ctx := context.Background()
	createOpenELB(t, nil)
	waitObjects(t, allObjects(true))
	ds, _ := getDaemonSet(t)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "openelb-speaker-term1", Labels: ds.Spec.Template.Labels},
		Spec:       *ds.Spec.Template.Spec.DeepCopy(),
	}
	p.Spec.NodeName = "worker-1" // bound: deletion waits for a kubelet that never comes
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, p, client.GracePeriodSeconds(0)) })
	if err := k8s.Delete(ctx, p); err != nil { // terminating, like a speaker shutting down
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, getELB(t)); err != nil {
		t.Fatal(err)
	}
	e := waitCondition(t, operatorv1alpha1.ConditionProgressing, metav1.ConditionTrue, "Deleting")
	if !strings.Contains(condition(e, operatorv1alpha1.ConditionProgressing).Message, "1 speaker pods") {
		t.Errorf("Deleting message %q", condition(e, operatorv1alpha1.ConditionProgressing).Message)
	}
	if _, err := getDaemonSet(t); !apierrors.IsNotFound(err) {
		t.Errorf("speaker DaemonSet not deleted first: %v", err)
	}
	for _, k := range render.Catalog(ns) {
		if k.Kind == "ClusterRole" && k.Name == render.SpeakerName {
			if _, ok := exists(t, k); !ok {
				t.Error("the speakers' ClusterRole went before their pods")
			}
		}
	}
	if err := k8s.Delete(ctx, p, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	deleteOpenELB(t) // waits until the finalizer is done
	for _, k := range render.Catalog(ns) {
		if _, ok := exists(t, k); ok {
			t.Errorf("%s left after uninstall", k)
		}
	}
}
