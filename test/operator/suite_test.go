// Package operator_test proves the operator role against a real
// kube-apiserver and etcd: what it creates, how it repairs drift, what it
// removes, how it reports status. No kubelet, scheduler or workload
// controllers run, so tests play their part: they write Deployment and
// DaemonSet status and create pods where a test needs them.
package operator_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/operator-framework/operator-lib/conditions"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/openelb/openelb-operator/controllers/operator"
	"github.com/openelb/openelb-operator/internal/logging"
	"github.com/openelb/openelb-operator/internal/render"
	"github.com/openelb/openelb-operator/internal/testenv"
)

const (
	ns    = "openelb-test"
	image = "example.test/openelb:test"
)

var (
	env         *testenv.Env
	k8s         client.Client
	upgradeable = &fakeCondition{}
)

// fakeCondition records what the reconciler tells OLM (operator-lib's
// Condition, which needs a real OperatorCondition and OLM's namespace).
type fakeCondition struct {
	mu      sync.Mutex
	history []metav1.ConditionStatus
}

var _ conditions.Condition = (*fakeCondition)(nil)

func (f *fakeCondition) Get(context.Context) (*metav1.Condition, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.history) == 0 {
		return nil, fmt.Errorf("not set")
	}
	return &metav1.Condition{Type: "Upgradeable", Status: f.history[len(f.history)-1]}, nil
}

func (f *fakeCondition) Set(_ context.Context, s metav1.ConditionStatus, _ ...conditions.Option) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.history = append(f.history, s)
	return nil
}

func (f *fakeCondition) reset() []metav1.ConditionStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.history
	f.history = nil
	return h
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	env, err = testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: envtest:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8s = env.Client
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Quiet unless asked: TEST_LOG_LEVEL=debug shows the operator's logs.
	ctrl.SetLogger(logr.Discard())
	if lvl := os.Getenv("TEST_LOG_LEVEL"); lvl != "" {
		if _, err := logging.Setup(logging.Options{Level: lvl, Format: "console"}); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: logging:", err)
			return 1
		}
	}
	if err := setupCluster(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: cluster setup:", err)
		return 1
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:  env.Scheme,
		Cache:   operator.CacheOptions(ns),
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: manager:", err)
		return 1
	}
	r := &operator.Reconciler{
		Client:      mgr.GetClient(),
		APIReader:   mgr.GetAPIReader(),
		Recorder:    mgr.GetEventRecorderFor("openelb-operator"),
		Settings:    render.Settings{Namespace: ns, Image: image},
		Upgradeable: upgradeable,
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

// setupCluster creates the install namespace and two Linux nodes (one a
// tainted control-plane node, which the speakers tolerate by default).
func setupCluster(ctx context.Context) error {
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	for _, n := range []*corev1.Node{
		{ObjectMeta: metav1.ObjectMeta{Name: "worker-1", Labels: map[string]string{corev1.LabelOSStable: "linux"}}},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "control-plane-1", Labels: map[string]string{corev1.LabelOSStable: "linux"}},
			Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}}},
		},
	} {
		taints := n.Spec.Taints
		if err := k8s.Create(ctx, n); err != nil {
			return err
		}
		// The API server taints new nodes not-ready until a kubelet
		// reports; no kubelet runs here, so the nodes are made ready.
		n.Spec.Taints = taints
		if err := k8s.Update(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// eventually polls cond every 50 ms until it returns "" or timeout passes;
// then the test fails with cond's last complaint.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
