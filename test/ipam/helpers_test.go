package ipam_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	ipamctrl "github.com/openelb/openelb-operator/controllers/ipam"
	"github.com/openelb/openelb-operator/internal/app/controller"
	"github.com/openelb/openelb-operator/internal/ipam/kube"
	"github.com/openelb/openelb-operator/internal/webhooks"
)

var metricsOff = metricsserver.Options{BindAddress: "0"}

func kubeConfig(o controller.Options) kube.Config {
	return kube.Config{LoadBalancerClass: o.LoadBalancerClass, AllocateClassless: o.AllocateClassless}
}

// instance is one running IPAM controller (a manager with the reconcilers,
// without webhooks: those run for the whole suite).
type instance struct {
	mgr    manager.Manager
	core   *ipamctrl.Core
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// stop stops the controller and waits until its manager returned.
func (in *instance) stop() {
	in.once.Do(func() {
		in.cancel()
		<-in.done
	})
}

// elected reports whether the instance holds the lease.
func (in *instance) elected() bool {
	select {
	case <-in.mgr.Elected():
		return true
	default:
		return false
	}
}

type instanceOpts struct {
	class       string
	isolation   bool
	classless   bool
	leaderElect bool
	cfg         *rest.Config // nil: a fresh one
}

// fixture owns the controllers of one test and stops them all after the
// test's own clean-ups (which need a running controller to release
// finalizers).
type fixture struct {
	mu        sync.Mutex
	instances []*instance
}

var fixtures sync.Map // *testing.T → *fixture

func controllers(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{}
	if old, loaded := fixtures.LoadOrStore(t, f); loaded {
		return old.(*fixture)
	}
	t.Cleanup(func() {
		fixtures.Delete(t)
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, in := range f.instances {
			in.stop()
		}
	})
	return f
}

func (f *fixture) start(t *testing.T, o instanceOpts) *instance {
	t.Helper()
	in := newInstance(t, o)
	f.mu.Lock()
	f.instances = append(f.instances, in)
	f.mu.Unlock()
	return in
}

// startController starts an IPAM controller for the test.
func startController(t *testing.T, o instanceOpts) *instance {
	t.Helper()
	return controllers(t).start(t, o)
}

func newInstance(t *testing.T, o instanceOpts) *instance {
	t.Helper()
	if o.class == "" {
		o.class = defaultClass
	}
	cfg := o.cfg
	if cfg == nil {
		cfg = newConfig()
	}
	co := controllerOptions(o.class, o.isolation)
	co.AllocateClassless = o.classless
	co.LeaderElect = o.leaderElect
	co.LeaderElectionID = "openelb-controller-test"
	co.MetricsAddr, co.ProbeAddr = "0", "0"
	mo := co.ManagerOptions()
	mo.Scheme = env.Scheme
	skip := true // several managers in one process
	mo.Controller.SkipNameValidation = &skip
	if o.leaderElect {
		lease, renew, retry := 4*time.Second, 3*time.Second, 300*time.Millisecond
		mo.LeaseDuration, mo.RenewDeadline, mo.RetryPeriod = &lease, &renew, &retry
	}
	mgr, err := ctrl.NewManager(cfg, mo)
	if err != nil {
		t.Fatalf("manager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	record := &webhooks.Record{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Namespace: controllerNS, Grace: 2 * time.Second, Now: time.Now}
	core := ipamctrl.NewCore(mgr.GetClient(), mgr.GetAPIReader(), ipamctrl.Options{Config: kubeConfig(co), Isolation: co.NamespaceIsolation})
	if err := core.SetupWithManager(mgr, record); err != nil {
		cancel()
		t.Fatalf("setup: %v", err)
	}
	in := &instance{mgr: mgr, core: core, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(in.done)
		if err := mgr.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("controller stopped: %v", err)
		}
	}()
	return in
}

// waitFor polls cond every 50 ms until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last: %s)", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var ctx = context.Background()

// namespace creates a namespace for one test and deletes it at its end.
func namespace(t *testing.T, prefix string, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-", Labels: labels}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

type eipMod func(*networkv1alpha2.Eip)

func isDefault(e *networkv1alpha2.Eip) {
	if e.Annotations == nil {
		e.Annotations = map[string]string{}
	}
	e.Annotations[networkv1alpha2.AnnotationDefaultEip] = "true"
}
func boundTo(ns ...string) eipMod    { return func(e *networkv1alpha2.Eip) { e.Spec.Namespaces = ns } }
func priority(p int) eipMod          { return func(e *networkv1alpha2.Eip) { e.Spec.Priority = p } }
func disable(e *networkv1alpha2.Eip) { e.Spec.Disable = true }
func selector(l map[string]string) eipMod {
	return func(e *networkv1alpha2.Eip) { e.Spec.NamespaceSelector = l }
}

func eipObj(name, address string, mods ...eipMod) *networkv1alpha2.Eip {
	e := &networkv1alpha2.Eip{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkv1alpha2.EipSpec{Address: address}}
	for _, m := range mods {
		m(e)
	}
	return e
}

// mkEip creates an Eip through the webhook and deletes it (waiting until
// it is gone) when the test ends.
func mkEip(t *testing.T, name, address string, mods ...eipMod) *networkv1alpha2.Eip {
	t.Helper()
	e := eipObj(name, address, mods...)
	if err := env.Client.Create(ctx, e); err != nil {
		t.Fatalf("create eip %s: %v", name, err)
	}
	t.Cleanup(func() { deleteEip(t, name) })
	return e
}

func deleteEip(t *testing.T, name string) {
	t.Helper()
	e := &networkv1alpha2.Eip{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Delete(ctx, e); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete eip %s: %v", name, err)
	}
	gone(t, e, 20*time.Second)
}

// gone waits until an object is deleted; if it is not, it strips the
// finalizers so that later tests start clean, and fails the test.
func gone(t *testing.T, o client.Object, timeout time.Duration) {
	t.Helper()
	key := client.ObjectKeyFromObject(o)
	deadline := time.Now().Add(timeout)
	for {
		err := env.Client.Get(ctx, key, o)
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%T %s not deleted within %s (finalizers %v): stripping finalizers", o, key, timeout, o.GetFinalizers())
			o.SetFinalizers(nil)
			_ = env.Client.Update(ctx, o)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type svcMod func(*corev1.Service)

func ann(k, v string) svcMod {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
}

var openelb = ann(networkv1alpha2.AnnotationOpenELB, networkv1alpha2.ValueOpenELB)

func class(c string) svcMod  { return func(s *corev1.Service) { s.Spec.LoadBalancerClass = &c } }
func eipAnn(n string) svcMod { return ann(networkv1alpha2.AnnotationEip, n) }
func wantIP(ip string) svcMod {
	return ann(networkv1alpha2.AnnotationRequestedIP, ip)
}
func shareKey(k string) svcMod { return ann(networkv1alpha2.AnnotationSharedIP, k) }
func local(s *corev1.Service) {
	s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
}
func port(ps ...int32) svcMod {
	return func(s *corev1.Service) {
		s.Spec.Ports = nil
		for _, p := range ps {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", p), Port: p, Protocol: corev1.ProtocolTCP})
		}
	}
}

func svcObj(ns, name string, mods ...svcMod) *corev1.Service {
	no := false
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			AllocateLoadBalancerNodePorts: &no,
			Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
			Selector:                      map[string]string{"app": name},
		},
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

// mkSvc creates a Service and deletes it (waiting until it is gone, which
// needs the controller to drop its finalizer) when the test ends.
func mkSvc(t *testing.T, ns, name string, mods ...svcMod) *corev1.Service {
	t.Helper()
	s := svcObj(ns, name, mods...)
	if err := env.Client.Create(ctx, s); err != nil {
		t.Fatalf("create service %s/%s: %v", ns, name, err)
	}
	t.Cleanup(func() { deleteSvc(t, ns, name) })
	return s
}

func deleteSvc(t *testing.T, ns, name string) {
	t.Helper()
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := env.Client.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete service %s/%s: %v", ns, name, err)
	}
	gone(t, s, 20*time.Second)
}

func getSvc(t *testing.T, ns, name string) *corev1.Service {
	t.Helper()
	s := &corev1.Service{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		t.Fatalf("get service %s/%s: %v", ns, name, err)
	}
	return s
}

func ingressIPs(s *corev1.Service) []string {
	var out []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		out = append(out, in.IP)
	}
	return out
}

// waitIPs waits until a Service shows exactly the given addresses (none:
// waits for an empty ingress).
func waitIPs(t *testing.T, ns, name string, want ...string) *corev1.Service {
	t.Helper()
	var s *corev1.Service
	waitFor(t, 15*time.Second, fmt.Sprintf("%s/%s to show %v", ns, name, want), func() (bool, string) {
		s = getSvc(t, ns, name)
		got := ingressIPs(s)
		return slices.Equal(got, want), fmt.Sprint(got)
	})
	return s
}

// waitAnyIP waits until a Service has n addresses and returns them.
func waitAnyIP(t *testing.T, ns, name string, n int) []string {
	t.Helper()
	var got []string
	waitFor(t, 15*time.Second, fmt.Sprintf("%s/%s to get %d addresses", ns, name, n), func() (bool, string) {
		got = ingressIPs(getSvc(t, ns, name))
		return len(got) == n, fmt.Sprint(got)
	})
	return got
}

// stays checks that a Service keeps the given addresses for a while.
func stays(t *testing.T, ns, name string, d time.Duration, want ...string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if got := ingressIPs(getSvc(t, ns, name)); !slices.Equal(got, want) {
			t.Fatalf("%s/%s shows %v, want %v", ns, name, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitEvent waits for an Event on an object with the reason whose message
// contains text.
func waitEvent(t *testing.T, ns, name, reason, text string) corev1.Event {
	t.Helper()
	var found corev1.Event
	waitFor(t, 15*time.Second, fmt.Sprintf("event %s %q on %s/%s", reason, text, ns, name), func() (bool, string) {
		var list corev1.EventList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.InvolvedObject.Name != name {
				continue
			}
			seen = append(seen, e.Reason+": "+e.Message)
			if e.Reason == reason && strings.Contains(e.Message, text) {
				found = e
				return true, ""
			}
		}
		return false, strings.Join(seen, " | ")
	})
	return found
}

func getEip(t *testing.T, name string) *networkv1alpha2.Eip {
	t.Helper()
	e := &networkv1alpha2.Eip{}
	if err := env.Client.Get(ctx, types.NamespacedName{Name: name}, e); err != nil {
		t.Fatalf("get eip %s: %v", name, err)
	}
	return e
}

// waitEip waits until an Eip's status satisfies cond.
func waitEip(t *testing.T, name, what string, cond func(*networkv1alpha2.Eip) (bool, string)) *networkv1alpha2.Eip {
	t.Helper()
	var e *networkv1alpha2.Eip
	waitFor(t, 15*time.Second, "eip "+name+" "+what, func() (bool, string) {
		e = getEip(t, name)
		return cond(e)
	})
	return e
}

func patchSvc(t *testing.T, ns, name string, mutate func(*corev1.Service)) error {
	t.Helper()
	s := getSvc(t, ns, name)
	orig := s.DeepCopy()
	mutate(s)
	return env.Client.Patch(ctx, s, client.MergeFrom(orig))
}

func patchEip(t *testing.T, name string, mutate func(*networkv1alpha2.Eip)) error {
	t.Helper()
	e := getEip(t, name)
	orig := e.DeepCopy()
	mutate(e)
	return env.Client.Patch(ctx, e, client.MergeFrom(orig))
}

// warnings is a client that records the API warnings it receives.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warnings) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.msgs, " | ")
}

func warningClient(t *testing.T) (client.Client, *warnings) {
	t.Helper()
	w := &warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandlerWithContext = w
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// withoutServiceWebhook removes the Service webhooks for the duration of f
// (the webhook is down; failurePolicy Ignore lets requests through).
func withoutServiceWebhook(t *testing.T, f func()) {
	t.Helper()
	withWebhooks(t, func(name string) bool { return name != webhooks.EipName }, f)
}

// withoutEipWebhook removes the Eip webhook for the duration of f (as if it
// were bypassed).
func withoutEipWebhook(t *testing.T, f func()) {
	t.Helper()
	withWebhooks(t, func(name string) bool { return name == webhooks.EipName }, f)
}

var webhookMu sync.Mutex

func withWebhooks(t *testing.T, remove func(string) bool, f func()) {
	t.Helper()
	webhookMu.Lock()
	defer webhookMu.Unlock()
	var vwc admissionVWC
	key := types.NamespacedName{Name: "openelb-admission"}
	if err := env.Client.Get(ctx, key, &vwc); err != nil {
		t.Fatal(err)
	}
	saved := vwc.DeepCopy()
	vwc.Webhooks = slices.DeleteFunc(vwc.Webhooks, func(w admissionWebhook) bool { return remove(w.Name) })
	if err := env.Client.Update(ctx, &vwc); err != nil {
		t.Fatal(err)
	}
	// The apiserver reloads webhook configurations asynchronously.
	time.Sleep(1500 * time.Millisecond)
	defer func() {
		var cur admissionVWC
		if err := env.Client.Get(ctx, key, &cur); err != nil {
			t.Fatal(err)
		}
		cur.Webhooks = saved.Webhooks
		if err := env.Client.Update(ctx, &cur); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
	}()
	f()
}

type (
	admissionVWC     = admissionregistrationv1.ValidatingWebhookConfiguration
	admissionWebhook = admissionregistrationv1.ValidatingWebhook
)

func condTrue(e *networkv1alpha2.Eip, typ string) bool {
	for _, c := range e.Status.Conditions {
		if c.Type == typ {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

func condOf(e *networkv1alpha2.Eip, typ string) metav1.Condition {
	for _, c := range e.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}

// deleteNamespace deletes a namespace a test created by name.
func deleteNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete namespace %s: %v", name, err)
	}
}

func keyOf(name string) types.NamespacedName { return types.NamespacedName{Name: name} }

func objectMeta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }
