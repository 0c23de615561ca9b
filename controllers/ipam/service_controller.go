package ipam

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	alloc "github.com/openelb/openelb-operator/internal/ipam"
	"github.com/openelb/openelb-operator/internal/ipam/kube"
)

// Event reasons on Services (OpenELB 0.6 used AssignIP and ReleaseIP; the
// failure reasons are the ipam.Reason values).
const (
	ReasonAssignIP  = "AssignIP"
	ReasonReleaseIP = "ReleaseIP"
)

// pendingRecheck is a safety net: a Service without its addresses is
// reconciled again after this long even if no Eip, Namespace or freed
// address triggered it (OpenELB never retried, #318).
const pendingRecheck = 5 * time.Minute

// ServiceReconciler assigns and releases the addresses of LoadBalancer
// Services.
type ServiceReconciler struct {
	Client   client.Client
	Recorder record.EventRecorder
	Core     *Core
}

// SetupWithManager registers the reconciler: Services (recording when one
// needing an address arrives), Eips and Namespaces (re-evaluating pending
// Services) and the allocator's retry queue.
func (r *ServiceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("ipam-service").
		Watches(&corev1.Service{}, r.serviceHandler(), builder.WithPredicates(predicate.NewPredicateFuncs(r.relevant))).
		Watches(&networkv1alpha2.Eip{}, handler.EnqueueRequestsFromMapFunc(r.onEip),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.pendingIn), builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WatchesRawSource(r.Core.svcQueue).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Core.opts.ServiceWorkers}).
		Complete(r)
}

// relevant filters the Services worth a reconcile: LoadBalancer Services and
// Services we left markers on.
func (r *ServiceReconciler) relevant(o client.Object) bool {
	svc, ok := o.(*corev1.Service)
	return ok && (svc.Spec.Type == corev1.ServiceTypeLoadBalancer || kube.HasMarkers(svc))
}

func (r *ServiceReconciler) serviceHandler() handler.EventHandler {
	enqueue := func(o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		if svc, ok := o.(*corev1.Service); ok && len(svc.Status.LoadBalancer.Ingress) == 0 && r.Core.opts.Config.Ours(svc) {
			r.Core.arrived(keyOf(svc), time.Now())
		}
		q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}})
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(e.Object, q)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(e.ObjectNew, q)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(e.Object, q)
		},
		GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(e.Object, q)
		},
	}
}

// onEip marks the pools for re-reading and re-evaluates pending Services
// and those missing an optional family.
func (r *ServiceReconciler) onEip(context.Context, client.Object) []reconcile.Request {
	r.Core.MarkPoolsDirty()
	return requests(append(r.Core.Alloc.Pending(), r.Core.Alloc.Incomplete()...), "")
}

// pendingIn re-evaluates the pending and incomplete Services of a
// Namespace whose labels changed (namespaceSelector).
func (r *ServiceReconciler) pendingIn(_ context.Context, o client.Object) []reconcile.Request {
	return requests(append(r.Core.Alloc.Pending(), r.Core.Alloc.Incomplete()...), o.GetName())
}

func requests(keys []alloc.ServiceKey, ns string) []reconcile.Request {
	var out []reconcile.Request
	for _, k := range keys {
		if ns == "" || k.Namespace == ns {
			out = append(out, requestFor(k))
		}
	}
	return out
}

// plan is what one reconcile does to a Service.
type plan struct {
	skip    bool         // nothing to write
	release bool         // forget the Service after the write
	desired kube.Desired // the Service's desired addresses and finalizer
	problem error        // reported as a Warning Event
}

// Reconcile brings one Service to its desired addresses with at most one
// write.
func (r *ServiceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if err := r.Core.Ready(ctx); err != nil {
		return ctrl.Result{}, fmt.Errorf("restore allocations: %w", err)
	}
	key := alloc.ServiceKey{Namespace: req.Namespace, Name: req.Name}
	svc := &corev1.Service{}
	if err := r.Client.Get(ctx, req.NamespacedName, svc); err != nil {
		if apierrors.IsNotFound(err) {
			r.Core.forget(key)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get service: %w", err)
	}
	if r.Core.stale(key, svc.ResourceVersion) {
		return ctrl.Result{}, nil
	}
	if err := r.Core.SyncPools(ctx, false); err != nil {
		return ctrl.Result{}, err
	}
	p, err := r.plan(ctx, svc)
	if err != nil {
		return ctrl.Result{}, err
	}
	return r.apply(ctx, svc, p)
}

// plan computes the desired state: release when the Service is being
// deleted or no longer ours, otherwise the allocator's assignment.
func (r *ServiceReconciler) plan(ctx context.Context, svc *corev1.Service) (plan, error) {
	key := keyOf(svc)
	if svc.DeletionTimestamp != nil || !r.Core.opts.Config.Ours(svc) {
		if !kube.HasMarkers(svc) && !r.Core.Alloc.Known(key) {
			return plan{skip: true}, nil
		}
		return plan{release: true}, nil
	}
	labels, err := r.namespaceLabels(ctx, svc.Namespace)
	if err != nil {
		return plan{}, err
	}
	req, err := kube.ServiceRequest(svc, labels)
	if err != nil {
		// Bad input: keep what the Service has, say why.
		return plan{skip: true, problem: &alloc.Error{Reason: alloc.ReasonInvalid, Msg: err.Error()}}, nil
	}
	addrs, err := r.Core.Alloc.Assign(req)
	if note := r.Core.takeNote(key); note != nil {
		err = errors.Join(note, err)
	}
	return plan{desired: kube.Desired{Addrs: addrs, Finalizer: len(addrs) > 0}, problem: err}, nil
}

func (r *ServiceReconciler) namespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	ns := &corev1.Namespace{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, ns, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get namespace: %w", err)
	}
	return maps.Clone(ns.Labels), nil
}

// apply writes the plan (one status patch), then lets the allocator free
// what the Service no longer shows, and reports.
func (r *ServiceReconciler) apply(ctx context.Context, svc *corev1.Service, p plan) (ctrl.Result, error) {
	key := keyOf(svc)
	r.report(ctx, svc, p.problem)
	if p.skip {
		return ctrl.Result{}, nil
	}
	before := kube.IngressAddrs(svc)
	if len(before) == 0 {
		// The apiserver clears the status of a Service that stops being a
		// LoadBalancer: report what the allocator knew it had.
		before = r.Core.Alloc.Held(key)
	}
	if patch := kube.Patch(svc, p.desired); patch != nil {
		replaced := svc.ResourceVersion
		target := svc.DeepCopy()
		if err := r.Client.Status().Patch(ctx, target, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
			if apierrors.IsNotFound(err) {
				r.Core.forget(key)
				return ctrl.Result{}, nil
			}
			return ctrl.Result{}, fmt.Errorf("patch service status: %w", err)
		}
		apiWrites.WithLabelValues("services/status").Inc()
		r.Core.written(key, replaced)
		r.announce(svc, before, p.desired.Addrs)
		ctrl.LoggerFrom(ctx).V(4).Info("Wrote service", "patch", string(patch))
	}
	if p.release {
		r.Core.forget(key)
		return ctrl.Result{}, nil
	}
	written := make([]netip.Addr, len(p.desired.Addrs))
	for i, a := range p.desired.Addrs {
		written[i] = a.Addr
	}
	r.Core.Alloc.Commit(key, written)
	if len(written) > 0 && len(svc.Status.LoadBalancer.Ingress) == 0 {
		r.Core.assigned(key)
	}
	if p.problem != nil {
		return ctrl.Result{RequeueAfter: pendingRecheck}, nil
	}
	return ctrl.Result{}, nil
}

// announce emits AssignIP / ReleaseIP when the addresses changed.
func (r *ServiceReconciler) announce(svc *corev1.Service, before []netip.Addr, after []alloc.Assigned) {
	var parts []string
	same := len(before) == len(after)
	for i, a := range after {
		parts = append(parts, fmt.Sprintf("%s (Eip %s)", a.Addr, a.Pool))
		if same && before[i] != a.Addr {
			same = false
		}
	}
	switch {
	case same:
	case len(after) > 0:
		r.Recorder.Eventf(svc, corev1.EventTypeNormal, ReasonAssignIP, "Assigned %s", strings.Join(parts, ", "))
	default:
		r.Recorder.Eventf(svc, corev1.EventTypeNormal, ReasonReleaseIP, "Released %s", addrList(before))
	}
}

func addrList(as []netip.Addr) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}

// report emits one Warning Event per distinct problem, logs and counts it.
func (r *ServiceReconciler) report(ctx context.Context, svc *corev1.Service, problem error) {
	msg := ""
	if problem != nil {
		msg = strings.ReplaceAll(problem.Error(), "\n", "; ")
	}
	if !r.Core.problem(keyOf(svc), msg) {
		return
	}
	reason := string(alloc.ReasonOf(problem))
	if reason == "" {
		reason = string(alloc.ReasonInvalid)
	}
	assignErrors.WithLabelValues(reason).Inc()
	ctrl.LoggerFrom(ctx).Info("Service without (all of) its addresses", "reason", reason, "problem", msg)
	r.Recorder.Event(svc, corev1.EventTypeWarning, reason, msg)
}
