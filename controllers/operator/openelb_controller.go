// Package operator reconciles the OpenELB resource: it renders every object
// of the installation (internal/render), applies them with server-side
// apply, deletes what is no longer rendered, repairs drift, removes
// leftovers of earlier OpenELB installs and reports status. The singleton
// is the resource named "openelb"; any other is reported and ignored.
package operator

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/operator-framework/operator-lib/conditions"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
	"github.com/openelb/openelb-operator/internal/render"
	"github.com/openelb/openelb-operator/internal/version"
)

// FieldOwner is the server-side apply field manager of everything the
// operator writes.
const FieldOwner = "openelb-operator"

// Reconciler reconciles the OpenELB resource.
type Reconciler struct {
	// Client reads from the cache (see CacheOptions) and writes.
	client.Client
	// APIReader reads uncached: generated Secrets (never regenerate a key
	// because the cache lags) and objects the cache does not hold
	// (upstream workloads in any namespace, 0.5 leftovers).
	APIReader client.Reader
	Recorder  record.EventRecorder
	// Settings are the operator's own rendering settings.
	Settings render.Settings
	// Upgradeable is the OLM OperatorCondition "Upgradeable" (operator-lib);
	// nil when not running under OLM.
	Upgradeable conditions.Condition
	// Rand and Now default to crypto/rand and time.Now.
	Rand io.Reader
	Now  func() time.Time
	// UpstreamRecheck is how often a healthy install looks for an upstream
	// OpenELB again (default 5 minutes).
	UpstreamRecheck time.Duration

	mu              sync.Mutex
	upstreamFor     types.UID
	upstreamChecked time.Time
	upstreamFound   []workloadRef
	applied         map[render.Key]appliedState
	pendingRemoved  []string
	pendingLegacy   []string
	lastUpgradeable metav1.ConditionStatus
	keepalivedWarn  string
}

// +kubebuilder:rbac:groups=operator.openelb.kubesphere.io,resources=openelbs,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=operator.openelb.kubesphere.io,resources=openelbs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=operator.openelb.kubesphere.io,resources=openelbs/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;daemonsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,verbs=get;delete,resourceNames=openelb-admission
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;update;patch,resourceNames=eips.network.kubesphere.io;bgpconfs.network.kubesphere.io;bgppeers.network.kubesphere.io
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch

// On OpenShift the operator creates the speakers' SecurityContextConstraints
// and lets the speaker ServiceAccount use it (internal/render
// SpeakerSCCRule); it may change and use only that one (create cannot be
// restricted by name, list and watch feed the cache by label):
// +kubebuilder:rbac:groups=security.openshift.io,resources=securitycontextconstraints,verbs=list;watch;create
// +kubebuilder:rbac:groups=security.openshift.io,resources=securitycontextconstraints,verbs=get;update;patch;delete;use,resourceNames=openelb-speaker

// What the operands are granted cluster-wide; RBAC forbids granting what
// one does not hold (internal/render ControllerClusterRules,
// SpeakerClusterRules; a test checks the two stay in step):
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups="",resources=services/status,verbs=update;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=network.kubesphere.io,resources=eips;bgpconfs;bgppeers,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=network.kubesphere.io,resources=eips/status;bgpconfs/status;bgppeers/status,verbs=update;patch
// +kubebuilder:rbac:groups=network.kubesphere.io,resources=eips/finalizers,verbs=update

// In the install namespace only (a Role; kustomize and OLM set the
// namespace):
// +kubebuilder:rbac:groups="",namespace=openelb-system,resources=secrets;configmaps;services;serviceaccounts,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",namespace=openelb-system,resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,namespace=openelb-system,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=openelb-system,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,namespace=openelb-system,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete

// Reconcile brings the installation in line with one OpenELB resource. A
// conflict (the cache was behind a write) is retried shortly without being
// logged as an error.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	res, err := r.reconcile(ctx, req)
	if err != nil && ctx.Err() != nil {
		return ctrl.Result{}, nil // shutting down
	}
	if apierrors.IsConflict(err) {
		logf.FromContext(ctx).V(4).Info("Retrying after a conflict", "error", err.Error())
		return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
	}
	return res, err
}

func (r *Reconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	elb := &operatorv1alpha1.OpenELB{}
	if err := r.Get(ctx, req.NamespacedName, elb); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if elb.Name != operatorv1alpha1.ResourceName {
		return ctrl.Result{}, r.reportNotSingleton(ctx, elb)
	}
	if !elb.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, elb)
	}
	if err := r.ensureFinalizer(ctx, elb); err != nil {
		return ctrl.Result{}, err
	}
	before := elb.DeepCopy()
	obs := &observation{
		Migrate:            elb.Spec.MigrateFromUpstream,
		SpeakersRendered:   render.SpeakersEnabled(elb),
		ControllerReplicas: render.ControllerReplicas(elb),
	}
	requeue, err := r.install(ctx, elb, obs)
	r.carryRemovals(obs)
	if err != nil && isTransient(err) {
		return ctrl.Result{}, err
	}
	obs.ApplyErr = err
	if err := r.writeStatus(ctx, before, computeStatus(elb, obs, version.Version)); err != nil {
		return ctrl.Result{}, err
	}
	r.clearRemovals()
	r.setUpgradeable(ctx, obs)
	return ctrl.Result{RequeueAfter: requeue}, err
}

// carryRemovals keeps what was removed of earlier installs until a status
// write reports it: a removal happens once, its status write may conflict.
func (r *Reconciler) carryRemovals(obs *observation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pendingRemoved = append(r.pendingRemoved, obs.Removed...)
	r.pendingLegacy = append(r.pendingLegacy, obs.RemovedLegacy...)
	obs.Removed, obs.RemovedLegacy = slices.Clone(r.pendingRemoved), slices.Clone(r.pendingLegacy)
}

func (r *Reconciler) clearRemovals() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pendingRemoved, r.pendingLegacy = nil, nil
}

// install runs the phases of a reconcile in order and returns when to look
// again.
func (r *Reconciler) install(ctx context.Context, elb *operatorv1alpha1.OpenELB, obs *observation) (time.Duration, error) {
	if err := r.checkUpstream(ctx, elb, obs); err != nil {
		return 0, err
	}
	if obs.blocked() {
		// Nothing is applied; what may already run of ours is still
		// counted.
		return r.upstreamRecheck(), r.observe(ctx, elb, obs)
	}
	if err := r.migrate(ctx, elb, obs); err != nil {
		return 0, err
	}
	if err := r.removeLegacy(ctx, elb, obs); err != nil {
		return 0, err
	}
	in, certCheck, err := r.inputs(ctx, elb)
	if err != nil {
		return 0, err
	}
	r.warnKeepalivedImage(elb)
	objs, err := render.Render(elb, in)
	if err != nil {
		return 0, err
	}
	if err := r.apply(ctx, elb, objs); err != nil {
		return 0, err
	}
	if err := r.prune(ctx, elb, objs); err != nil {
		return 0, err
	}
	if err := r.observe(ctx, elb, obs); err != nil {
		return 0, err
	}
	return min(r.upstreamRecheck(), max(time.Until(certCheck), time.Second)), nil
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) rand() io.Reader {
	if r.Rand != nil {
		return r.Rand
	}
	return rand.Reader
}

func (r *Reconciler) upstreamRecheck() time.Duration {
	if r.UpstreamRecheck > 0 {
		return r.UpstreamRecheck
	}
	return 5 * time.Minute
}

func (r *Reconciler) ensureFinalizer(ctx context.Context, elb *operatorv1alpha1.OpenELB) error {
	if controllerutil.ContainsFinalizer(elb, operatorv1alpha1.Finalizer) {
		return nil
	}
	orig := elb.DeepCopy()
	controllerutil.AddFinalizer(elb, operatorv1alpha1.Finalizer)
	if err := r.Patch(ctx, elb, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("add finalizer: %w", err)
	}
	return nil
}

// writeStatus patches the status when it changed. The patch carries the
// resourceVersion it was computed from: a status computed from a stale
// cache is refused (conflict, retried) instead of overwriting a newer one.
func (r *Reconciler) writeStatus(ctx context.Context, before *operatorv1alpha1.OpenELB, st operatorv1alpha1.OpenELBStatus) error {
	if equality.Semantic.DeepEqual(before.Status, st) {
		return nil
	}
	// The whole status, zero counts included (a diff would leave out a
	// "ready: 0" that was never written), guarded by resourceVersion.
	data, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": before.ResourceVersion},
		"status":   st,
	})
	if err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	after := before.DeepCopy()
	if err := r.Status().Patch(ctx, after, client.RawPatch(types.MergePatchType, data), client.FieldOwner(FieldOwner)); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("write status: %w", err))
	}
	return nil
}

// reportNotSingleton marks a resource with another name as ignored; the
// CRD rejects such names, so this only happens when validation was
// bypassed (an older CRD, or validation disabled).
func (r *Reconciler) reportNotSingleton(ctx context.Context, elb *operatorv1alpha1.OpenELB) error {
	msg := "there is one OpenELB resource per cluster and it must be named 'openelb'; this one is ignored"
	st := elb.Status.DeepCopy()
	st.ObservedGeneration = elb.Generation
	st.Version = version.Version
	for _, c := range []struct {
		t string
		s metav1.ConditionStatus
	}{
		{operatorv1alpha1.ConditionAvailable, metav1.ConditionFalse},
		{operatorv1alpha1.ConditionProgressing, metav1.ConditionFalse},
		{operatorv1alpha1.ConditionDegraded, metav1.ConditionTrue},
	} {
		setCondition(st, c.t, c.s, ReasonIncorrectName, msg, elb.Generation)
	}
	if equality.Semantic.DeepEqual(elb.Status, *st) {
		return nil
	}
	r.Recorder.Event(elb, corev1.EventTypeWarning, ReasonIncorrectName, msg)
	return r.writeStatus(ctx, elb, *st)
}

// warnKeepalivedImage reports spec.images.keepalived, which has no effect,
// once per generation.
func (r *Reconciler) warnKeepalivedImage(elb *operatorv1alpha1.OpenELB) {
	if elb.Spec.Images.Keepalived == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := fmt.Sprintf("%s/%d", elb.UID, elb.Generation)
	if r.keepalivedWarn == seen {
		return
	}
	r.keepalivedWarn = seen
	r.Recorder.Event(elb, corev1.EventTypeWarning, "KeepalivedImageUnused",
		"spec.images.keepalived has no effect: keepalived runs in the speaker pods' keepalived sidecar, from the speaker image")
}

// CacheOptions restricts the manager's cache to what the operator owns:
// namespaced kinds in its namespace only, cluster-scoped kinds it creates
// by label, Nodes reduced to labels and taints.
func CacheOptions(namespace string) cache.Options {
	return CacheOptionsFor(render.Settings{Namespace: namespace})
}

// CacheOptionsFor is CacheOptions for the operator's settings: on OpenShift
// it caches the SecurityContextConstraints it creates, by label.
func CacheOptionsFor(s render.Settings) cache.Options {
	namespace := s.Namespace
	ours := labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy})
	nsOnly := map[string]cache.Config{namespace: {}}
	nsOurs := map[string]cache.Config{namespace: {LabelSelector: ours}}
	opts := cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}:            {Namespaces: nsOnly},
			&appsv1.DaemonSet{}:             {Namespaces: nsOnly},
			&corev1.Service{}:               {Namespaces: nsOurs},
			&corev1.ServiceAccount{}:        {Namespaces: nsOurs},
			&corev1.Secret{}:                {Namespaces: nsOurs},
			&corev1.Pod{}:                   {Namespaces: nsOurs},
			&rbacv1.Role{}:                  {Namespaces: nsOurs},
			&rbacv1.RoleBinding{}:           {Namespaces: nsOurs},
			&policyv1.PodDisruptionBudget{}: {Namespaces: nsOurs},
			&rbacv1.ClusterRole{}:           {Label: ours},
			&rbacv1.ClusterRoleBinding{}:    {Label: ours},
			&admissionregistrationv1.ValidatingWebhookConfiguration{}: {Label: ours},
			&corev1.Node{}: {Transform: stripNode},
		},
	}
	if s.SecurityContextConstraints {
		opts.ByObject[sccObject()] = cache.ByObject{Label: ours}
	}
	return opts
}

// sccObject is an empty SecurityContextConstraints (unstructured: the
// operator does not depend on OpenShift's API types).
func sccObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(render.SCCGroupVersionKind)
	return u
}

// SecurityContextConstraintsServed reports whether the cluster serves
// OpenShift's SecurityContextConstraints, i.e. whether the speakers need
// one of their own to be admitted.
func SecurityContextConstraintsServed(mapper meta.RESTMapper) (bool, error) {
	gvk := render.SCCGroupVersionKind
	_, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	switch {
	case err == nil:
		return true, nil
	case meta.IsNoMatchError(err):
		return false, nil
	default:
		return false, fmt.Errorf("look up %s: %w", gvk.Kind, err)
	}
}

// stripNode keeps what eligibility needs (labels, taints) and drops the
// rest (images, addresses, conditions), which dominate a Node's size.
func stripNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{
		TypeMeta: n.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Generation: n.Generation,
			Labels: n.Labels, DeletionTimestamp: n.DeletionTimestamp,
		},
		Spec: corev1.NodeSpec{Taints: n.Spec.Taints, Unschedulable: n.Spec.Unschedulable},
	}, nil
}

// SetupWithManager registers the reconciler: the OpenELB resource, every
// kind it owns (so a deleted or edited object is repaired at once), the
// operand pods (status), and Nodes (speaker eligibility).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	toSingleton := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: operatorv1alpha1.ResourceName}}}
	})
	nodeChanged := predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*corev1.Node), e.ObjectNew.(*corev1.Node)
			return !equality.Semantic.DeepEqual(o.Labels, n.Labels) || !equality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints)
		},
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&operatorv1alpha1.OpenELB{}).
		Named("openelb")
	for _, o := range ownedKinds() {
		b = b.Owns(o)
	}
	if r.Settings.SecurityContextConstraints {
		b = b.Owns(sccObject())
	}
	return b.
		Watches(&corev1.Pod{}, toSingleton).
		Watches(&corev1.Node{}, toSingleton, builder.WithPredicates(nodeChanged)).
		Complete(r)
}

func ownedKinds() []client.Object {
	return []client.Object{
		&appsv1.Deployment{}, &appsv1.DaemonSet{}, &corev1.Service{}, &corev1.ServiceAccount{}, &corev1.Secret{},
		&rbacv1.Role{}, &rbacv1.RoleBinding{}, &rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{},
		&admissionregistrationv1.ValidatingWebhookConfiguration{}, &policyv1.PodDisruptionBudget{},
	}
}

func setCondition(st *operatorv1alpha1.OpenELBStatus, t string, s metav1.ConditionStatus, reason, msg string, gen int64) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen})
}
