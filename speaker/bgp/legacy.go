package bgp

import (
	"context"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

// OpenELB 0.6's speakers put finalizer.lb.kubesphere.io/v1alpha1 on
// BgpConf and BgpPeer objects and removed it when they were deleted. Our
// speakers never add it, but migrated objects still carry it: without
// this, deleting such an object after the migration would leave it
// Terminating forever. Any speaker may release it (idempotent; the one
// that loses the optimistic-lock race finds it gone).

// releaseLegacyFinalizer removes OpenELB 0.6's finalizer from a BgpConf or
// BgpPeer that is being deleted, and reports whether it wrote.
func releaseLegacyFinalizer(ctx context.Context, c client.Client, o client.Object) (bool, error) {
	if o.GetDeletionTimestamp() == nil || !slices.Contains(o.GetFinalizers(), networkv1alpha2.FinalizerService) {
		return false, nil
	}
	orig, ok := o.DeepCopyObject().(client.Object)
	if !ok {
		return false, nil
	}
	upd := orig.DeepCopyObject().(client.Object)
	upd.SetFinalizers(slices.DeleteFunc(slices.Clone(upd.GetFinalizers()), func(f string) bool { return f == networkv1alpha2.FinalizerService }))
	err := c.Patch(ctx, upd, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return false, nil // gone, or another speaker was first (a newer version will come by)
	}
	return err == nil, err
}

// withLegacyRelease wraps h so that a BgpConf or BgpPeer seen terminating
// with OpenELB 0.6's finalizer gets it released.
func (b *Backend) withLegacyRelease(h toolscache.ResourceEventHandlerFuncs) toolscache.ResourceEventHandlerFuncs {
	check := func(obj any) {
		o, ok := obj.(client.Object)
		if !ok || b.writer == nil || o.GetDeletionTimestamp() == nil {
			return
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), legacyReleaseTimeout)
			defer cancel()
			if wrote, err := releaseLegacyFinalizer(ctx, b.writer, o); err != nil {
				b.log.Error(err, "Cannot remove OpenELB 0.6's finalizer", "kind", kindOf(o), "name", o.GetName())
			} else if wrote {
				b.log.Info("Removed OpenELB 0.6's finalizer from a deleted object", "kind", kindOf(o), "name", o.GetName())
			}
		}()
	}
	add, upd := h.AddFunc, h.UpdateFunc
	h.AddFunc = func(obj any) { check(obj); add(obj) }
	h.UpdateFunc = func(o, n any) { check(n); upd(o, n) }
	return h
}

func kindOf(o client.Object) string {
	switch o.(type) {
	case *networkv1alpha2.BgpConf:
		return "BgpConf"
	case *networkv1alpha2.BgpPeer:
		return "BgpPeer"
	}
	return "object"
}
