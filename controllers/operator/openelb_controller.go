// Package operator reconciles the OpenELB resource.
package operator

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
	"github.com/openelb/openelb-operator/internal/version"
)

// Reconciler reconciles the OpenELB resource. This build validates the
// singleton and reports that operand rendering is not built yet; it never
// claims the installation is available.
type Reconciler struct {
	client.Client
	Recorder  record.EventRecorder
	Namespace string
}

// +kubebuilder:rbac:groups=operator.openelb.kubesphere.io,resources=openelbs,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=operator.openelb.kubesphere.io,resources=openelbs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=operator.openelb.kubesphere.io,resources=openelbs/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Reconcile reports the state of one OpenELB resource.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var elb operatorv1alpha1.OpenELB
	if err := r.Get(ctx, req.NamespacedName, &elb); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := elb.Status.DeepCopy()
	cond := metav1.Condition{
		Type:               operatorv1alpha1.ConditionDegraded,
		Status:             metav1.ConditionTrue,
		Reason:             "OperandsNotBuilt",
		Message:            "this build of the operator does not render the controller and speakers yet",
		ObservedGeneration: elb.Generation,
	}
	if elb.Name != operatorv1alpha1.ResourceName {
		cond.Reason = "IncorrectResourceName"
		cond.Message = "there is one OpenELB resource per cluster and it must be named 'openelb'; this one is ignored"
		r.Recorder.Event(&elb, corev1.EventTypeWarning, cond.Reason, cond.Message)
	}
	meta.SetStatusCondition(&elb.Status.Conditions, cond)
	meta.SetStatusCondition(&elb.Status.Conditions, metav1.Condition{
		Type: operatorv1alpha1.ConditionAvailable, Status: metav1.ConditionFalse, Reason: cond.Reason,
		Message: cond.Message, ObservedGeneration: elb.Generation,
	})
	elb.Status.ObservedGeneration = elb.Generation
	elb.Status.Version = version.Version
	if equalStatus(before, &elb.Status) {
		return ctrl.Result{}, nil
	}
	if err := r.Status().Update(ctx, &elb); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

func equalStatus(a, b *operatorv1alpha1.OpenELBStatus) bool {
	if a.ObservedGeneration != b.ObservedGeneration || a.Version != b.Version || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message || x.ObservedGeneration != y.ObservedGeneration {
			return false
		}
	}
	return true
}

// SetupWithManager registers the reconciler.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).For(&operatorv1alpha1.OpenELB{}).Named("openelb").Complete(r)
}
