package webhooks

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/ipam"
	"github.com/openelb/openelb-operator/internal/ipam/kube"
)

// +kubebuilder:webhook:path=/validate-v1-service,mutating=false,failurePolicy=ignore,sideEffects=None,groups="",resources=services,verbs=create;update,versions=v1,name=validate.service.openelb.kubesphere.io,admissionReviewVersions=v1,timeoutSeconds=5

// ServiceValidator admits our LoadBalancer Services: malformed address or
// Eip annotations are denied with the parse error; a requested address or
// Eip bound to other namespaces gets a warning (denied under namespace
// isolation); a requested address held by a Service it may not share with
// is denied. failurePolicy is Ignore, so the controller applies the same
// rules (Event, no address) when the webhook is not reachable.
type ServiceValidator struct {
	// Reader reads Eips, Namespaces and Services with IndexIngressIP (the
	// manager's cache).
	Reader    client.Reader
	Config    kube.Config
	Isolation bool
}

var _ admission.CustomValidator = (*ServiceValidator)(nil)

// ValidateCreate implements admission.CustomValidator.
func (v *ServiceValidator) ValidateCreate(ctx context.Context, obj runtime.Object) (admission.Warnings, error) {
	return v.validate(ctx, obj.(*corev1.Service))
}

// ValidateUpdate implements admission.CustomValidator.
func (v *ServiceValidator) ValidateUpdate(ctx context.Context, _, newObj runtime.Object) (admission.Warnings, error) {
	return v.validate(ctx, newObj.(*corev1.Service))
}

// ValidateDelete implements admission.CustomValidator (not registered for
// DELETE).
func (v *ServiceValidator) ValidateDelete(context.Context, runtime.Object) (admission.Warnings, error) {
	return nil, nil
}

func (v *ServiceValidator) validate(ctx context.Context, svc *corev1.Service) (admission.Warnings, error) {
	if !v.Config.Ours(svc) {
		return nil, nil
	}
	var labels map[string]string
	ns := &corev1.Namespace{}
	if err := v.Reader.Get(ctx, types.NamespacedName{Name: svc.Namespace}, ns); err == nil {
		labels = ns.Labels
	} else if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get namespace %s: %w", svc.Namespace, err)
	}
	req, err := kube.ServiceRequest(svc, labels)
	if err != nil {
		return nil, err
	}
	if len(svc.Spec.IPFamilies) > 0 {
		if err := ipam.Validate(&req); err != nil {
			return nil, err
		}
	}
	pools, err := v.pools(ctx)
	if err != nil {
		return nil, err
	}
	var warn admission.Warnings
	for _, name := range req.Eips {
		p := findPool(pools, func(p *ipam.Pool) bool { return p.Name == name })
		if p == nil {
			warn = append(warn, fmt.Sprintf("Eip %s does not exist: the Service gets no address until it does", name))
			continue
		}
		w, err := v.binding(&req, p, "Eip "+name)
		if err != nil {
			return warn, err
		}
		warn = append(warn, w...)
	}
	for _, a := range req.Addrs {
		p := findPool(pools, func(p *ipam.Pool) bool { return p.Range.Contains(a) })
		if p == nil {
			warn = append(warn, fmt.Sprintf("no Eip contains %s: the Service gets no address until one does", a))
			continue
		}
		w, err := v.binding(&req, p, fmt.Sprintf("the requested address %s (Eip %s)", a, p.Name))
		if err != nil {
			return warn, err
		}
		warn = append(warn, w...)
		if err := v.sharing(ctx, &req, a.String()); err != nil {
			return warn, err
		}
	}
	return warn, nil
}

// binding applies the namespace binding of a pool: a warning by default
// (OpenELB only asks that a requested address lie in an Eip), a denial
// under namespace isolation.
func (v *ServiceValidator) binding(req *ipam.Service, p *ipam.Pool, what string) (admission.Warnings, error) {
	if !p.BoundElsewhere(req.Key.Namespace, req.NamespaceLabels) {
		return nil, nil
	}
	msg := fmt.Sprintf("%s is bound to other namespaces than %s", what, req.Key.Namespace)
	if v.Isolation {
		return nil, fmt.Errorf("namespace isolation: %s", msg)
	}
	return admission.Warnings{msg}, nil
}

// sharing denies a requested address held by a Service it may not share
// with.
func (v *ServiceValidator) sharing(ctx context.Context, req *ipam.Service, addr string) error {
	var holders corev1.ServiceList
	if err := v.Reader.List(ctx, &holders, client.MatchingFields{IndexIngressIP: addr}); err != nil {
		return fmt.Errorf("list services holding %s: %w", addr, err)
	}
	slices.SortFunc(holders.Items, func(a, b corev1.Service) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	for i := range holders.Items {
		h := &holders.Items[i]
		if (h.Namespace == req.Key.Namespace && h.Name == req.Key.Name) || !(v.Config.Ours(h) || kube.HasMarkers(h)) {
			continue
		}
		hreq, _ := kube.ServiceRequest(h, nil)
		if err := ipam.CanShare(req, &hreq, v.Isolation); err != nil {
			return fmt.Errorf("address %s is held by %s/%s and cannot be shared: %s", addr, h.Namespace, h.Name, strings.TrimSpace(err.Error()))
		}
	}
	return nil
}

func (v *ServiceValidator) pools(ctx context.Context) ([]ipam.Pool, error) {
	var list networkv1alpha2.EipList
	if err := v.Reader.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list eips: %w", err)
	}
	var out []ipam.Pool
	for i := range list.Items {
		if p, err := kube.EipPool(&list.Items[i]); err == nil {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b ipam.Pool) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

func findPool(ps []ipam.Pool, match func(*ipam.Pool) bool) *ipam.Pool {
	for i := range ps {
		if match(&ps[i]) {
			return &ps[i]
		}
	}
	return nil
}
