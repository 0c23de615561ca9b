// Package openshift_test proves the operator on a cluster that serves
// OpenShift's SecurityContextConstraints (installed from a CRD fixture into
// a real kube-apiserver and etcd): it detects the API, creates the
// speakers' SCC, lets the speaker ServiceAccount use it, repairs it, and
// removes it with the speakers.
package openshift_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
	"github.com/openelb/openelb-operator/controllers/operator"
	"github.com/openelb/openelb-operator/internal/render"
	"github.com/openelb/openelb-operator/internal/testenv"
)

const (
	ns   = "openelb-openshift-test"
	wait = 20 * time.Second
)

var (
	k8s client.Client
	// served is what the operator's detection said about this cluster.
	served    bool
	servedErr error
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	env, err := testenv.Start(testenv.Options{ExtraCRDDirs: []string{"testdata"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: envtest:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8s = env.Client
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctrl.SetLogger(logr.Discard())
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: namespace:", err)
		return 1
	}
	// The same detection as `openelb operator` at start-up.
	served, servedErr = operator.SecurityContextConstraintsServed(k8s.RESTMapper())
	settings := render.Settings{Namespace: ns, Image: "example.test/openelb:test", SecurityContextConstraints: served}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:  env.Scheme,
		Cache:   operator.CacheOptionsFor(settings),
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: manager:", err)
		return 1
	}
	r := &operator.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorderFor("openelb-operator"),
		Settings:  settings,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: reconciler:", err)
		return 1
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	return m.Run()
}

func eventually(t *testing.T, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, wait, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getSCC(ctx context.Context) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(render.SCCGroupVersionKind)
	return u, k8s.Get(ctx, types.NamespacedName{Name: render.SpeakerSCCName}, u)
}

// waitSCC waits until the SCC exists, is controlled by the OpenELB
// resource and says what the operator renders.
func waitSCC(t *testing.T, uid types.UID) *unstructured.Unstructured {
	t.Helper()
	var u *unstructured.Unstructured
	eventually(t, "speaker SCC", func() string {
		var err error
		if u, err = getSCC(context.Background()); err != nil {
			return err.Error()
		}
		ref := metav1.GetControllerOf(u)
		if ref == nil || ref.UID != uid {
			return fmt.Sprintf("controller reference %+v", ref)
		}
		priv, _, _ := unstructured.NestedBool(u.Object, "allowPrivilegedContainer")
		host, _, _ := unstructured.NestedBool(u.Object, "allowHostNetwork")
		caps, _, _ := unstructured.NestedStringSlice(u.Object, "allowedCapabilities")
		if priv || !host || !slices.Equal(caps, []string{"NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE"}) {
			return fmt.Sprintf("privileged %v hostNetwork %v capabilities %v", priv, host, caps)
		}
		return ""
	})
	return u
}

func setModes(t *testing.T, on bool) {
	t.Helper()
	e := &operatorv1alpha1.OpenELB{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Name: operatorv1alpha1.ResourceName}, e); err != nil {
		t.Fatal(err)
	}
	orig := e.DeepCopy()
	e.Spec.Speaker.Layer2.Enabled, e.Spec.Speaker.BGP.Enabled = &on, &on
	if err := k8s.Patch(context.Background(), e, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
}

// settle waits until the OpenELB resource has not changed for a second:
// the operator's status writes (each one a reconcile) are over.
func settle(t *testing.T) {
	t.Helper()
	last, since := "", time.Now()
	eventually(t, "operator settled", func() string {
		e := &operatorv1alpha1.OpenELB{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Name: operatorv1alpha1.ResourceName}, e); err != nil {
			return err.Error()
		}
		if e.ResourceVersion != last {
			last, since = e.ResourceVersion, time.Now()
		}
		if time.Since(since) < time.Second {
			return "status still changing"
		}
		return ""
	})
}

func waitNoSCC(t *testing.T, what string) {
	t.Helper()
	eventually(t, what, func() string {
		if _, err := getSCC(context.Background()); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("SCC still there (%v)", err)
		}
		return ""
	})
}

// TestSpeakerSCC walks the SCC's life: created with the speakers and
// usable by their ServiceAccount, put back when edited or deleted, removed
// when no speaker runs and on uninstall.
func TestSpeakerSCC(t *testing.T) {
	ctx := context.Background()
	if servedErr != nil || !served {
		t.Fatalf("SecurityContextConstraints not detected on a cluster that serves them: %v %v", served, servedErr)
	}
	e := &operatorv1alpha1.OpenELB{ObjectMeta: metav1.ObjectMeta{Name: operatorv1alpha1.ResourceName}}
	if err := k8s.Create(ctx, e); err != nil {
		t.Fatal(err)
	}
	waitSCC(t, e.UID)

	role := &rbacv1.Role{}
	eventually(t, "speaker Role may use the SCC", func() string {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: render.SpeakerName}, role); err != nil {
			return err.Error()
		}
		if !slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
			return slices.Equal(r.Verbs, []string{"use"}) && slices.Equal(r.ResourceNames, []string{render.SpeakerSCCName})
		}) {
			return fmt.Sprintf("rules %v", role.Rules)
		}
		return ""
	})

	// Someone widens it: the operator takes the field back. Only the SCC
	// watch can tell it, once its reconciles have settled.
	settle(t)
	u, err := getSCC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"allowPrivilegedContainer":true,"allowedCapabilities":["ALL"]}`))
	if err := k8s.Patch(ctx, u, patch); err != nil {
		t.Fatal(err)
	}
	waitSCC(t, e.UID)

	// Someone deletes it: the operator recreates it.
	settle(t)
	if err := k8s.Delete(ctx, u); err != nil {
		t.Fatal(err)
	}
	eventually(t, "SCC recreated", func() string {
		got, err := getSCC(ctx)
		if err != nil {
			return err.Error()
		}
		if got.GetUID() == u.GetUID() {
			return "still the deleted one"
		}
		return ""
	})
	waitSCC(t, e.UID)

	// No speaker mode: no speakers, no SCC.
	setModes(t, false)
	waitNoSCC(t, "SCC removed with the speakers")
	setModes(t, true)
	waitSCC(t, e.UID)

	// Uninstall removes it.
	if err := k8s.Delete(ctx, e); err != nil {
		t.Fatal(err)
	}
	waitNoSCC(t, "SCC removed on uninstall")
	eventually(t, "OpenELB deleted", func() string {
		if err := k8s.Get(ctx, types.NamespacedName{Name: operatorv1alpha1.ResourceName}, e); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("still there (%v)", err)
		}
		return ""
	})
}
