package ipam

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/webhooks"
)

// EipReconciler keeps an Eip's finalizer (an Eip in use is never deleted)
// and its derived status, written at most once per StatusInterval.
type EipReconciler struct {
	Client client.Client
	Core   *Core
	// Record, when set, is cleaned of deleted Eips.
	Record *webhooks.Record

	mu        sync.Mutex
	lastWrite map[string]time.Time
}

// SetupWithManager registers the reconciler for Eips and for the
// allocator's pool changes.
func (r *EipReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.lastWrite = map[string]time.Time{}
	return ctrl.NewControllerManagedBy(mgr).
		Named("ipam-eip").
		For(&networkv1alpha2.Eip{}).
		WatchesRawSource(r.Core.eipQueue).
		Complete(r)
}

// Reconcile ensures the finalizer, releases it when the Eip is deleted and
// unused, and writes the status.
func (r *EipReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if err := r.Core.Ready(ctx); err != nil {
		return ctrl.Result{}, fmt.Errorf("restore allocations: %w", err)
	}
	if err := r.Core.SyncPools(ctx, true); err != nil {
		return ctrl.Result{}, err
	}
	eip := &networkv1alpha2.Eip{}
	if err := r.Client.Get(ctx, req.NamespacedName, eip); err != nil {
		if apierrors.IsNotFound(err) {
			eipAddresses.DeleteLabelValues(req.Name)
			eipInUse.DeleteLabelValues(req.Name)
			return r.collect(ctx)
		}
		return ctrl.Result{}, fmt.Errorf("get eip: %w", err)
	}
	if eip.DeletionTimestamp != nil {
		return r.finalize(ctx, eip)
	}
	if !controllerutil.ContainsFinalizer(eip, networkv1alpha2.FinalizerEip) {
		orig := eip.DeepCopy()
		controllerutil.AddFinalizer(eip, networkv1alpha2.FinalizerEip)
		if err := r.Client.Patch(ctx, eip, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, fmt.Errorf("add eip finalizer: %w", err)
		}
		apiWrites.WithLabelValues("eips").Inc()
	}
	return r.writeStatus(ctx, eip)
}

// collect cleans the record after an Eip disappeared.
func (r *EipReconciler) collect(ctx context.Context) (ctrl.Result, error) {
	if r.Record == nil {
		return ctrl.Result{}, nil
	}
	wait, err := r.Record.GC(ctx)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("collect eip record: %w", err)
	}
	return ctrl.Result{RequeueAfter: wait}, nil
}

// finalize removes the finalizer of a deleted Eip once no Service holds
// its addresses; until then the status names them.
func (r *EipReconciler) finalize(ctx context.Context, eip *networkv1alpha2.Eip) (ctrl.Result, error) {
	if _, n := r.Core.Alloc.Services(eip.Name, 1); n > 0 {
		return r.writeStatus(ctx, eip)
	}
	if !controllerutil.ContainsFinalizer(eip, networkv1alpha2.FinalizerEip) {
		return ctrl.Result{}, nil
	}
	if r.Record != nil {
		if err := r.Record.Remove(ctx, eip.Name, eip.UID); err != nil {
			return ctrl.Result{}, fmt.Errorf("remove eip from record: %w", err)
		}
	}
	orig := eip.DeepCopy()
	controllerutil.RemoveFinalizer(eip, networkv1alpha2.FinalizerEip)
	if err := r.Client.Patch(ctx, eip, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("remove eip finalizer: %w", err))
	}
	apiWrites.WithLabelValues("eips").Inc()
	return ctrl.Result{}, nil
}

// writeStatus derives the status and writes it when it changed, at most
// once per StatusInterval per Eip.
func (r *EipReconciler) writeStatus(ctx context.Context, eip *networkv1alpha2.Eip) (ctrl.Result, error) {
	f := poolFacts{
		invalid:   r.Core.PoolError(eip.Name),
		deleting:  eip.DeletionTimestamp != nil,
		disabled:  eip.Spec.Disable,
		usedLimit: MaxUsedEntries,
		byteLimit: MaxUsedBytes,
	}
	f.status, f.known = r.Core.Alloc.PoolStatus(eip.Name, MaxUsedEntries)
	if f.deleting {
		f.holders, f.holdersN = r.Core.Alloc.Services(eip.Name, 10)
	}
	st := eipStatus(eip, f)
	if f.known {
		eipAddresses.WithLabelValues(eip.Name).Set(f.status.Range.SizeFloat())
		eipInUse.WithLabelValues(eip.Name).Set(float64(f.status.Usage))
	}
	if equality.Semantic.DeepEqual(st, eip.Status) {
		return ctrl.Result{}, nil
	}
	r.mu.Lock()
	wait := r.Core.opts.StatusInterval - time.Since(r.lastWrite[eip.Name])
	r.mu.Unlock()
	if wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	orig := eip.DeepCopy()
	eip.Status = st
	if err := r.Client.Status().Patch(ctx, eip, client.MergeFrom(orig)); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("patch eip status: %w", err))
	}
	apiWrites.WithLabelValues("eips/status").Inc()
	r.mu.Lock()
	r.lastWrite[eip.Name] = time.Now()
	r.mu.Unlock()
	return ctrl.Result{}, nil
}
