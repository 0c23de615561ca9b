package operator_test

import (
	"context"
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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
	"github.com/openelb/openelb-operator/internal/render"
)

const wait = 20 * time.Second

var elbKey = types.NamespacedName{Name: operatorv1alpha1.ResourceName}

// createOpenELB creates the OpenELB resource; cleanup deletes it and waits
// until the finalizer has removed the installation.
func createOpenELB(t *testing.T, mut func(*operatorv1alpha1.OpenELBSpec)) *operatorv1alpha1.OpenELB {
	t.Helper()
	ctx := context.Background()
	e := &operatorv1alpha1.OpenELB{ObjectMeta: metav1.ObjectMeta{Name: operatorv1alpha1.ResourceName}}
	if mut != nil {
		mut(&e.Spec)
	}
	if err := k8s.Create(ctx, e); err != nil {
		t.Fatalf("create OpenELB: %v", err)
	}
	t.Cleanup(func() { deleteOpenELB(t) })
	return e
}

func deleteOpenELB(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	e := &operatorv1alpha1.OpenELB{ObjectMeta: metav1.ObjectMeta{Name: operatorv1alpha1.ResourceName}}
	if err := k8s.Delete(ctx, e); client.IgnoreNotFound(err) != nil {
		t.Fatalf("delete OpenELB: %v", err)
	}
	eventually(t, wait, "OpenELB deleted", func() string {
		if err := k8s.Get(ctx, elbKey, e); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("still there (finalizers %v, err %v)", e.Finalizers, err)
		}
		return ""
	})
}

func getELB(t *testing.T) *operatorv1alpha1.OpenELB {
	t.Helper()
	e := &operatorv1alpha1.OpenELB{}
	if err := k8s.Get(context.Background(), elbKey, e); err != nil {
		t.Fatalf("get OpenELB: %v", err)
	}
	return e
}

func patchSpec(t *testing.T, mut func(*operatorv1alpha1.OpenELBSpec)) {
	t.Helper()
	e := getELB(t)
	orig := e.DeepCopy()
	mut(&e.Spec)
	if err := k8s.Patch(context.Background(), e, client.MergeFrom(orig)); err != nil {
		t.Fatalf("patch OpenELB spec: %v", err)
	}
}

// waitCondition waits until the resource's current generation has the
// condition with this status and reason.
func waitCondition(t *testing.T, typ string, status metav1.ConditionStatus, reason string) *operatorv1alpha1.OpenELB {
	t.Helper()
	var e *operatorv1alpha1.OpenELB
	eventually(t, wait, fmt.Sprintf("condition %s=%s (%s)", typ, status, reason), func() string {
		e = getELB(t)
		c := meta.FindStatusCondition(e.Status.Conditions, typ)
		switch {
		case c == nil:
			return "no condition; conditions: " + conditionsString(e)
		case c.Status != status || c.Reason != reason || c.ObservedGeneration != e.Generation || e.Status.ObservedGeneration != e.Generation:
			return fmt.Sprintf("generation %d; conditions: %s", e.Generation, conditionsString(e))
		}
		return ""
	})
	return e
}

func conditionsString(e *operatorv1alpha1.OpenELB) string {
	var s []string
	for _, c := range e.Status.Conditions {
		s = append(s, fmt.Sprintf("%s=%s/%s(gen %d): %s", c.Type, c.Status, c.Reason, c.ObservedGeneration, c.Message))
	}
	return strings.Join(s, "; ")
}

func condition(e *operatorv1alpha1.OpenELB, typ string) *metav1.Condition {
	return meta.FindStatusCondition(e.Status.Conditions, typ)
}

func getDaemonSet(t *testing.T) (*appsv1.DaemonSet, error) {
	t.Helper()
	ds := &appsv1.DaemonSet{}
	return ds, k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: render.SpeakerName}, ds)
}

func getDeployment(t *testing.T) (*appsv1.Deployment, error) {
	t.Helper()
	d := &appsv1.Deployment{}
	return d, k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: render.ControllerName}, d)
}

// waitSpeakerArgs waits until the DaemonSet's container has exactly args.
func waitSpeakerArgs(t *testing.T, want []string) *appsv1.DaemonSet {
	t.Helper()
	var ds *appsv1.DaemonSet
	eventually(t, wait, "speaker args", func() string {
		var err error
		ds, err = getDaemonSet(t)
		if err != nil {
			return err.Error()
		}
		if got := ds.Spec.Template.Spec.Containers[0].Args; !slices.Equal(got, want) {
			return fmt.Sprintf("args %v, want %v", got, want)
		}
		return ""
	})
	return ds
}

// markReady plays the Deployment and DaemonSet controllers and the kubelet:
// every desired pod is there, current and ready.
func markReady(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	eventually(t, wait, "workloads marked ready", func() string {
		d, err := getDeployment(t)
		if err != nil {
			return err.Error()
		}
		orig := d.DeepCopy()
		n := *d.Spec.Replicas
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, ReadyReplicas: n, UpdatedReplicas: n, AvailableReplicas: n}
		if err := k8s.Status().Patch(ctx, d, client.MergeFrom(orig)); err != nil {
			return err.Error()
		}
		ds, err := getDaemonSet(t)
		if err != nil {
			return err.Error()
		}
		origDS := ds.DeepCopy()
		ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, DesiredNumberScheduled: 2, CurrentNumberScheduled: 2,
			NumberReady: 2, UpdatedNumberScheduled: 2, NumberAvailable: 2}
		if err := k8s.Status().Patch(ctx, ds, client.MergeFrom(origDS)); err != nil {
			return err.Error()
		}
		return ""
	})
}

// exists reports whether the object at key exists.
func exists(t *testing.T, k render.Key) (*unstructured.Unstructured, bool) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(k.GroupVersionKind)
	err := k8s.Get(context.Background(), types.NamespacedName{Namespace: k.Namespace, Name: k.Name}, u)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("get %s: %v", k, err)
	}
	return u, err == nil
}

// waitObjects waits until exactly the keys in want exist among the
// catalog's.
func waitObjects(t *testing.T, want map[string]bool) {
	t.Helper()
	eventually(t, wait, "rendered objects", func() string {
		var wrong []string
		for _, k := range render.Catalog(ns) {
			_, ok := exists(t, k)
			if ok != want[k.Name+"/"+k.Kind] {
				wrong = append(wrong, fmt.Sprintf("%s exists=%v", k, ok))
			}
		}
		return strings.Join(wrong, ", ")
	})
}

// allObjects returns the want map of waitObjects for every catalog object,
// minus those of component speaker when speakers is false.
func allObjects(speakers bool) map[string]bool {
	out := map[string]bool{}
	for _, k := range render.Catalog(ns) {
		out[k.Name+"/"+k.Kind] = speakers || !strings.Contains(k.Name, "speaker")
	}
	return out
}

// events returns the Events about the OpenELB resource with this reason.
func events(t *testing.T, reason string) []corev1.Event {
	t.Helper()
	list := &corev1.EventList{}
	if err := k8s.List(context.Background(), list); err != nil {
		t.Fatalf("list events: %v", err)
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "OpenELB" && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

func waitEvent(t *testing.T, reason, contains string) corev1.Event {
	t.Helper()
	var found corev1.Event
	eventually(t, wait, "Event "+reason, func() string {
		for _, e := range events(t, reason) {
			if strings.Contains(e.Message, contains) {
				found = e
				return ""
			}
		}
		return "none yet"
	})
	return found
}

// clusterSnapshot lists the names of every cluster-scoped object of the
// kinds the operator may create, and of the namespaced ones in ns.
func clusterSnapshot(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	lists := []client.ObjectList{
		&rbacv1.ClusterRoleList{}, &rbacv1.ClusterRoleBindingList{},
		&admissionregistrationv1.ValidatingWebhookConfigurationList{}, &admissionregistrationv1.MutatingWebhookConfigurationList{},
	}
	for _, l := range lists {
		if err := k8s.List(ctx, l); err != nil {
			t.Fatalf("list %T: %v", l, err)
		}
		items, _ := meta.ExtractList(l)
		for _, o := range items {
			out = append(out, fmt.Sprintf("%T %s", l, o.(client.Object).GetName()))
		}
	}
	nsLists := []client.ObjectList{
		&appsv1.DeploymentList{}, &appsv1.DaemonSetList{}, &corev1.ServiceList{}, &corev1.SecretList{},
		&corev1.ConfigMapList{}, &rbacv1.RoleList{}, &rbacv1.RoleBindingList{}, &coordinationv1.LeaseList{},
	}
	for _, l := range nsLists {
		if err := k8s.List(ctx, l, client.InNamespace(ns)); err != nil {
			t.Fatalf("list %T: %v", l, err)
		}
		items, _ := meta.ExtractList(l)
		for _, o := range items {
			out = append(out, fmt.Sprintf("%T %s/%s", l, ns, o.(client.Object).GetName()))
		}
	}
	sas := &corev1.ServiceAccountList{}
	if err := k8s.List(ctx, sas, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, sa := range sas.Items {
		out = append(out, "ServiceAccount "+sa.Name)
	}
	slices.Sort(out)
	return out
}
