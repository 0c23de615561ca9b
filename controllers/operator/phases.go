package operator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/operator-framework/operator-lib/conditions"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
	"github.com/openelb/openelb-operator/internal/certs"
	"github.com/openelb/openelb-operator/internal/render"
)

// Names of an upstream OpenELB install's workloads (0.4/0.5: manager;
// 0.6 manifests and the Helm chart with release name openelb: controller,
// speaker) and of OpenELB 0.5's vip-mode leftovers.
var (
	upstreamNames   = []string{"openelb-manager", "openelb-controller", "openelb-speaker"}
	legacyDaemonSet = "openelb-keepalive-vip"
	legacyConfigMap = "openelb-vip-configmap"
)

// workloadRef names a workload found in the cluster.
type workloadRef struct {
	Kind      string
	Namespace string
	Name      string
}

func (w workloadRef) String() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

// isOurs reports whether obj is controlled by an OpenELB resource.
func isOurs(obj metav1.Object) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.Kind == "OpenELB" && ref.APIVersion == operatorv1alpha1.GroupVersion.String()
}

// checkUpstream looks for upstream OpenELB workloads in every namespace,
// uncached: on the first reconcile of a resource, then once per
// UpstreamRecheck, and on every reconcile while some are found. obs.Recheck
// tells later phases that this pass looked.
func (r *Reconciler) checkUpstream(ctx context.Context, elb *operatorv1alpha1.OpenELB, obs *observation) error {
	r.mu.Lock()
	// Nothing found recently for this resource: a spec change does not
	// make an upstream install appear, so only time brings a new look.
	fresh := r.upstreamFor == elb.UID && r.now().Sub(r.upstreamChecked) < r.upstreamRecheck() && len(r.upstreamFound) == 0
	r.mu.Unlock()
	if fresh {
		return nil
	}
	obs.Rechecked = true
	found, err := r.findUpstream(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.upstreamFor, r.upstreamChecked, r.upstreamFound = elb.UID, r.now(), found
	r.mu.Unlock()
	for _, w := range found {
		obs.Upstream = append(obs.Upstream, w.String())
	}
	if obs.blocked() {
		r.eventOnce(elb, corev1.EventTypeWarning, ReasonUpstreamFound, upstreamMessage(obs.Upstream))
	}
	return nil
}

// findUpstream lists (uncached, every namespace) the upstream OpenELB
// workloads: Deployments and DaemonSets with upstream's names that no
// OpenELB resource controls.
func (r *Reconciler) findUpstream(ctx context.Context) ([]workloadRef, error) {
	var found []workloadRef
	for _, name := range upstreamNames {
		sel := client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", name)}
		deps := &appsv1.DeploymentList{}
		if err := r.APIReader.List(ctx, deps, sel); err != nil {
			return nil, fmt.Errorf("look for upstream OpenELB Deployments: %w", err)
		}
		for i := range deps.Items {
			if !isOurs(&deps.Items[i]) {
				found = append(found, workloadRef{"Deployment", deps.Items[i].Namespace, name})
			}
		}
		dss := &appsv1.DaemonSetList{}
		if err := r.APIReader.List(ctx, dss, sel); err != nil {
			return nil, fmt.Errorf("look for upstream OpenELB DaemonSets: %w", err)
		}
		for i := range dss.Items {
			if !isOurs(&dss.Items[i]) {
				found = append(found, workloadRef{"DaemonSet", dss.Items[i].Namespace, name})
			}
		}
	}
	return found, nil
}

// eventOnce records an Event unless the Degraded condition already says
// the same (no Event storm on every reconcile).
func (r *Reconciler) eventOnce(elb *operatorv1alpha1.OpenELB, typ, reason, msg string) {
	for _, c := range elb.Status.Conditions {
		if c.Type == operatorv1alpha1.ConditionDegraded && c.Reason == reason && c.Message == msg {
			return
		}
	}
	r.Recorder.Event(elb, typ, reason, msg)
}

// migrate deletes the upstream workloads found when the spec asks for it,
// and upstream's webhook configurations (they point at upstream's
// certificates). Eips, BgpConfs, BgpPeers and Services are not touched.
func (r *Reconciler) migrate(ctx context.Context, elb *operatorv1alpha1.OpenELB, obs *observation) error {
	r.mu.Lock()
	found := slices.Clone(r.upstreamFound)
	r.mu.Unlock()
	if len(found) == 0 || !elb.Spec.MigrateFromUpstream {
		return nil
	}
	log := logf.FromContext(ctx)
	bg := client.PropagationPolicy(metav1.DeletePropagationBackground)
	for _, w := range found {
		var obj client.Object = &appsv1.Deployment{}
		if w.Kind == "DaemonSet" {
			obj = &appsv1.DaemonSet{}
		}
		obj.SetNamespace(w.Namespace)
		obj.SetName(w.Name)
		if err := r.Delete(ctx, obj, bg); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("remove upstream %s: %w", w, err)
		}
		log.Info("Removed upstream OpenELB workload", "workload", w.String())
		obs.Removed = append(obs.Removed, w.String())
	}
	for _, wh := range []struct {
		kind string
		obj  client.Object
	}{
		{"ValidatingWebhookConfiguration", &admissionregistrationv1.ValidatingWebhookConfiguration{}},
		{"MutatingWebhookConfiguration", &admissionregistrationv1.MutatingWebhookConfiguration{}},
	} {
		removed, err := r.deleteIfNotOurs(ctx, wh.kind, wh.obj, types.NamespacedName{Name: render.WebhookConfigName})
		if err != nil {
			return err
		}
		if removed != "" {
			obs.Removed = append(obs.Removed, removed)
		}
	}
	r.mu.Lock()
	r.upstreamFound, r.upstreamChecked = nil, time.Time{}
	r.mu.Unlock()
	obs.Upstream = nil
	r.Recorder.Event(elb, corev1.EventTypeNormal, ReasonUpstreamRemoved,
		"removed the upstream OpenELB install: "+joinList(obs.Removed)+"; Eips, BgpConfs, BgpPeers and Service addresses are kept")
	return nil
}

// deleteIfNotOurs deletes the object at key (read uncached) when it exists
// and no OpenELB resource controls it; it returns what it deleted.
func (r *Reconciler) deleteIfNotOurs(ctx context.Context, kind string, obj client.Object, key types.NamespacedName) (string, error) {
	if err := r.APIReader.Get(ctx, key, obj); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	if isOurs(obj) {
		return "", nil
	}
	what := kind + " " + key.Name
	if key.Namespace != "" {
		what = kind + " " + key.Namespace + "/" + key.Name
	}
	if err := r.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
		return "", fmt.Errorf("remove %s: %w", what, err)
	}
	return what, nil
}

// removeLegacy deletes OpenELB 0.5's vip-mode DaemonSet and ConfigMap from
// the install namespace: they survived upgrades and uninstalls there. It
// looks when checkUpstream did (they come from an earlier install, not
// from a spec change).
func (r *Reconciler) removeLegacy(ctx context.Context, elb *operatorv1alpha1.OpenELB, obs *observation) error {
	if !obs.Rechecked {
		return nil
	}
	ns := r.Settings.Namespace
	for _, o := range []struct {
		kind string
		obj  client.Object
		name string
	}{{"DaemonSet", &appsv1.DaemonSet{}, legacyDaemonSet}, {"ConfigMap", &corev1.ConfigMap{}, legacyConfigMap}} {
		removed, err := r.deleteIfNotOurs(ctx, o.kind, o.obj, types.NamespacedName{Namespace: ns, Name: o.name})
		if err != nil {
			return err
		}
		if removed != "" {
			obs.RemovedLegacy = append(obs.RemovedLegacy, removed)
		}
	}
	if len(obs.RemovedLegacy) > 0 {
		logf.FromContext(ctx).Info("Removed OpenELB 0.5 keepalived leftovers", "objects", obs.RemovedLegacy)
		r.Recorder.Event(elb, corev1.EventTypeNormal, ReasonKeepalivedRemoved,
			"removed the leftovers of OpenELB 0.5's vip mode: "+joinList(obs.RemovedLegacy))
	}
	return nil
}

func joinList(s []string) string { return strings.Join(s, ", ") }

// controllerCertRequest is the certificate of the controller's webhooks.
func (r *Reconciler) controllerCertRequest() certs.Request {
	return certs.Request{CAName: "openelb-controller-ca", DNSNames: certs.ServiceDNSNames(render.ControllerName, r.Settings.Namespace)}
}

// inputs reads (uncached) the generated material, renews the certificate
// when due and generates the speaker key once. It returns when the
// certificate must be looked at again.
func (r *Reconciler) inputs(ctx context.Context, elb *operatorv1alpha1.OpenELB) (render.Inputs, time.Time, error) {
	in := render.Inputs{Settings: r.Settings}
	ns := r.Settings.Namespace
	cert := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: render.ControllerCertName}, cert); client.IgnoreNotFound(err) != nil {
		return in, time.Time{}, fmt.Errorf("read %s: %w", render.ControllerCertName, err)
	}
	req := r.controllerCertRequest()
	now := r.now()
	m, change, err := certs.Ensure(certs.FromSecretData(cert.Data), req, now, r.rand())
	if err != nil {
		return in, time.Time{}, fmt.Errorf("controller webhook certificate: %w", err)
	}
	if change != certs.Unchanged {
		logf.FromContext(ctx).Info("Renewed the controller webhook certificate", "change", string(change))
		r.Recorder.Eventf(elb, corev1.EventTypeNormal, "Certificate"+string(change),
			"controller webhook certificate: %s", string(change))
	}
	in.ControllerCert, in.CABundle = m.SecretData(), m.Bundle
	if render.SpeakersEnabled(elb) {
		key := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: render.SpeakerKeyName}, key); client.IgnoreNotFound(err) != nil {
			return in, time.Time{}, fmt.Errorf("read %s: %w", render.SpeakerKeyName, err)
		}
		in.SpeakerKey = key.Data[render.SpeakerKeyKey]
		if len(in.SpeakerKey) == 0 {
			// 32 random bytes, hex-encoded: the key reaches the speakers
			// as an environment variable, which cannot hold NUL bytes.
			raw := make([]byte, 32)
			if _, err := io.ReadFull(r.rand(), raw); err != nil {
				return in, time.Time{}, fmt.Errorf("generate speaker key: %w", err)
			}
			in.SpeakerKey = []byte(hex.EncodeToString(raw))
		}
	}
	return in, certs.NextCheck(m, req, now), nil
}

// apply server-side applies every rendered object with the operator's
// field owner, taking over fields others changed (drift is reverted), and
// a controller reference to the OpenELB resource. An object is skipped when
// it renders exactly as last applied and the cache still shows the
// resourceVersion that apply returned: nobody changed it since. A steady
// reconcile therefore writes nothing, and a spec change writes only what
// it changes.
func (r *Reconciler) apply(ctx context.Context, elb *operatorv1alpha1.OpenELB, objs []render.Object) error {
	owner := metav1.NewControllerRef(elb, operatorv1alpha1.GroupVersion.WithKind("OpenELB"))
	for _, o := range objs {
		o.SetOwnerReferences([]metav1.OwnerReference{*owner})
		form, err := render.ApplyForm(o)
		if err != nil {
			return err
		}
		key := render.KeyOf(o)
		hash, err := formHash(form)
		if err != nil {
			return err
		}
		if r.unchangedSinceApply(ctx, o, key, hash) {
			continue
		}
		u := &unstructured.Unstructured{Object: form}
		if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			r.forget(key)
			return fmt.Errorf("apply %s: %w", key, err)
		}
		r.remember(key, appliedState{hash: hash, resourceVersion: u.GetResourceVersion()})
	}
	return nil
}

// appliedState is what the operator last applied to an object and the
// resourceVersion the API server answered with.
type appliedState struct {
	hash            string
	resourceVersion string
}

func formHash(form map[string]any) (string, error) {
	data, err := json.Marshal(form) // map keys are sorted: stable
	if err != nil {
		return "", fmt.Errorf("hash apply form: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

func (r *Reconciler) unchangedSinceApply(ctx context.Context, o render.Object, key render.Key, hash string) bool {
	r.mu.Lock()
	last, ok := r.applied[key]
	r.mu.Unlock()
	if !ok || last.hash != hash {
		return false
	}
	live, ok := o.DeepCopyObject().(client.Object)
	if !ok {
		return false
	}
	if err := r.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.Name}, live); err != nil {
		return false
	}
	return live.GetResourceVersion() == last.resourceVersion && live.GetDeletionTimestamp() == nil
}

func (r *Reconciler) remember(key render.Key, st appliedState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.applied == nil {
		r.applied = map[render.Key]appliedState{}
	}
	r.applied[key] = st
}

func (r *Reconciler) forget(key render.Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.applied, key)
}

// prune deletes catalog objects that were not rendered this time (a
// speaker mode turned off) and that the operator controls.
func (r *Reconciler) prune(ctx context.Context, elb *operatorv1alpha1.OpenELB, objs []render.Object) error {
	rendered := map[render.Key]bool{}
	for _, o := range objs {
		rendered[render.KeyOf(o)] = true
	}
	var stale []render.Key
	for _, k := range render.CatalogFor(r.Settings) {
		if !rendered[k] {
			stale = append(stale, k)
		}
	}
	_, err := r.deleteOwned(ctx, stale)
	return err
}

// deleteOwned deletes the objects at keys that an OpenELB resource
// controls (read uncached, so a cache lag never hides one); it returns how
// many still existed.
func (r *Reconciler) deleteOwned(ctx context.Context, keys []render.Key) (int, error) {
	existing := 0
	for _, k := range keys {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(k.GroupVersionKind)
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: k.Name}, u); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return existing, fmt.Errorf("read %s: %w", k, err)
		}
		if !isOurs(u) {
			continue
		}
		existing++
		r.forget(k)
		if err := r.Delete(ctx, u, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return existing, fmt.Errorf("delete %s: %w", k, err)
		}
		logf.FromContext(ctx).V(1).Info("Deleted object no longer rendered", "object", k.String())
	}
	return existing, nil
}

// observe reads the workloads, their pods and the nodes for the status.
func (r *Reconciler) observe(ctx context.Context, elb *operatorv1alpha1.OpenELB, obs *observation) error {
	ns := r.Settings.Namespace
	dep := &appsv1.Deployment{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: render.ControllerName}, dep); err == nil {
		obs.Deployment = dep
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read controller Deployment: %w", err)
	}
	if obs.SpeakersRendered {
		ds := &appsv1.DaemonSet{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: render.SpeakerName}, ds); err == nil {
			obs.DaemonSet = ds
		} else if !apierrors.IsNotFound(err) {
			return fmt.Errorf("read speaker DaemonSet: %w", err)
		}
		nodes := &corev1.NodeList{}
		if err := r.List(ctx, nodes); err != nil {
			return fmt.Errorf("list nodes: %w", err)
		}
		obs.EligibleNodes = eligibleNodes(nodes.Items, render.SpeakerNodeSelector(elb), render.SpeakerTolerations(elb))
	}
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{render.LabelName: render.AppName, render.LabelManagedBy: render.ManagedBy}); err != nil {
		return fmt.Errorf("list operand pods: %w", err)
	}
	obs.Pods = pods.Items
	return nil
}

// setUpgradeable tells OLM not to upgrade the operator while a migration or
// a rollout is in progress. Outside OLM it does nothing.
func (r *Reconciler) setUpgradeable(ctx context.Context, obs *observation) {
	if r.Upgradeable == nil {
		return
	}
	status, reason, msg := metav1.ConditionTrue, ReasonAsExpected, "no migration or rollout in progress"
	ctrlSt, spkSt, ctrlDone, spkDone := componentCounts(obs)
	switch {
	case len(obs.Removed) > 0 || (len(obs.Upstream) > 0 && obs.Migrate):
		status, reason, msg = metav1.ConditionFalse, ReasonUpgradeBlockedMigrate, "migrating from an upstream OpenELB install"
	case obs.ApplyErr == nil && (!ctrlDone || !spkDone):
		status, reason, msg = metav1.ConditionFalse, ReasonUpgradeBlockedRollout, countsMessage(obs, ctrlSt, spkSt)
	}
	r.mu.Lock()
	same := r.lastUpgradeable == status
	r.mu.Unlock()
	if same {
		return
	}
	if err := r.Upgradeable.Set(ctx, status, conditions.WithReason(reason), conditions.WithMessage(msg)); err != nil {
		logf.FromContext(ctx).Error(err, "Cannot set the OLM Upgradeable condition")
		return
	}
	r.mu.Lock()
	r.lastUpgradeable = status
	r.mu.Unlock()
}

// finalize removes every object of the installation, cluster-scoped ones
// included, then the finalizer. The speaker DaemonSet goes first and the
// rest after its pods are gone (bounded), so speakers can still withdraw
// their announcements and stop keepalived with their permissions intact.
func (r *Reconciler) finalize(ctx context.Context, elb *operatorv1alpha1.OpenELB) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(elb, operatorv1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	// The cache may still show a resource whose finalizer a previous pass
	// removed: never clean up twice (a new install may exist by now).
	live := &operatorv1alpha1.OpenELB{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(elb), live); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if live.UID != elb.UID || !controllerutil.ContainsFinalizer(live, operatorv1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	ns := r.Settings.Namespace
	workloads := []render.Key{
		{GroupVersionKind: appsv1.SchemeGroupVersion.WithKind("DaemonSet"), Namespace: ns, Name: render.SpeakerName},
		{GroupVersionKind: appsv1.SchemeGroupVersion.WithKind("Deployment"), Namespace: ns, Name: render.ControllerName},
	}
	if _, err := r.deleteOwned(ctx, workloads); err != nil {
		return ctrl.Result{}, err
	}
	pods := &corev1.PodList{}
	if err := r.APIReader.List(ctx, pods, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(render.SelectorLabels(render.ComponentSpeaker))}); err != nil {
		return ctrl.Result{}, fmt.Errorf("list speaker pods: %w", err)
	}
	if waited := r.now().Sub(elb.DeletionTimestamp.Time); len(pods.Items) > 0 && waited < speakerDrainTimeout {
		st := elb.Status.DeepCopy()
		st.ObservedGeneration = elb.Generation
		setCondition(st, operatorv1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonDeleting,
			fmt.Sprintf("uninstalling: waiting up to %s for %d speaker pods to stop before removing their permissions", speakerDrainTimeout, len(pods.Items)), elb.Generation)
		if err := r.writeStatus(ctx, elb, *st); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	if _, err := r.deleteOwned(ctx, render.CatalogFor(r.Settings)); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.deleteControllerState(ctx); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.releaseFinalizers(ctx); err != nil {
		return ctrl.Result{}, err
	}
	orig := elb.DeepCopy()
	controllerutil.RemoveFinalizer(elb, operatorv1alpha1.Finalizer)
	if err := r.Patch(ctx, elb, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner)); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("remove finalizer: %w", err))
	}
	logf.FromContext(ctx).Info("Removed the installation")
	return ctrl.Result{}, nil
}

// deleteControllerState deletes what the operands created for themselves in
// the install namespace: the controller's leader election Lease, the Eip
// webhook's range record and the vip speakers' group record. Unless an
// upstream install runs (same Lease name).
func (r *Reconciler) deleteControllerState(ctx context.Context) error {
	upstream, err := r.findUpstream(ctx)
	if err != nil || len(upstream) > 0 {
		return err
	}
	ns := r.Settings.Namespace
	for _, o := range []client.Object{
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.ControllerLeaseName}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.ControllerRecordName}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.VIPRecordName}},
	} {
		if err := r.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete %T %s: %w", o, client.ObjectKeyFromObject(o), err)
		}
	}
	return nil
}

// releaseFinalizers removes, on uninstall, the finalizers only the
// controller and the speakers clear (Services, Eips, BgpConfs, BgpPeers):
// with them gone, a finalizer would block deleting these objects forever.
// Nothing else of the user's objects changes. When an upstream OpenELB runs
// (its finalizers have the same names and it still clears them), nothing
// is touched.
func (r *Reconciler) releaseFinalizers(ctx context.Context) error {
	upstream, err := r.findUpstream(ctx)
	if err != nil || len(upstream) > 0 {
		return err
	}
	lists := []struct {
		list      client.ObjectList
		finalizer string
	}{
		{&corev1.ServiceList{}, networkv1alpha2.FinalizerService},
		{&networkv1alpha2.EipList{}, networkv1alpha2.FinalizerEip},
		{&networkv1alpha2.BgpConfList{}, networkv1alpha2.FinalizerService},
		{&networkv1alpha2.BgpPeerList{}, networkv1alpha2.FinalizerService},
	}
	log := logf.FromContext(ctx)
	for _, l := range lists {
		if err := r.APIReader.List(ctx, l.list); err != nil {
			return fmt.Errorf("list %T: %w", l.list, err)
		}
		items, err := meta.ExtractList(l.list)
		if err != nil {
			return err
		}
		for _, item := range items {
			obj, ok := item.(client.Object)
			if !ok || !controllerutil.ContainsFinalizer(obj, l.finalizer) {
				continue
			}
			orig, ok := obj.DeepCopyObject().(client.Object)
			if !ok {
				continue
			}
			controllerutil.RemoveFinalizer(obj, l.finalizer)
			if err := r.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner)); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("release the finalizer of %T %s: %w", obj, client.ObjectKeyFromObject(obj), err)
			}
			log.V(1).Info("Released an OpenELB finalizer", "object", client.ObjectKeyFromObject(obj).String(), "finalizer", l.finalizer)
		}
	}
	return nil
}

// speakerDrainTimeout bounds the wait for speaker pods on uninstall: their
// grace period is 10 s; a pod on a dead node never goes.
const speakerDrainTimeout = 30 * time.Second

// isTransient reports errors that say nothing about the spec.
func isTransient(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) || errors.Is(err, context.Canceled)
}
