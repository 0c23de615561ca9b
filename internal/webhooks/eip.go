package webhooks

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/ipam"
	"github.com/openelb/openelb-operator/internal/ipam/kube"
)

// +kubebuilder:webhook:path=/validate-network-kubesphere-io-v1alpha2-eip,mutating=false,failurePolicy=fail,sideEffects=NoneOnDryRun,groups=network.kubesphere.io,resources=eips,verbs=create;update;delete,versions=v1alpha2,name=validate.eip.network.kubesphere.io,admissionReviewVersions=v1,matchPolicy=Equivalent

// EipValidator admits Eip creates, updates and deletes: the address
// parses, is not reversed and has one family; layer2 and vip name an
// interface; no overlap with another Eip and at most one default Eip per
// family (race-free through the Record); no shrink or delete while
// addresses are in use. A protocol the OpenELB resource does not enable is
// admitted with a warning.
type EipValidator struct {
	// Reader reads Services with the IndexPool index (the manager's cache).
	Reader           client.Reader
	Record           *Record
	EnabledProtocols []string
}

var _ admission.CustomValidator = (*EipValidator)(nil)

func protocolOf(e *networkv1alpha2.Eip) string {
	if e.Spec.Protocol == "" {
		return networkv1alpha2.ProtocolBGP
	}
	return e.Spec.Protocol
}

// check validates an Eip on its own.
func (v *EipValidator) check(e *networkv1alpha2.Eip) (ipam.Range, admission.Warnings, error) {
	rng, err := ipam.ParseRange(e.Spec.Address)
	if err != nil {
		return rng, nil, err
	}
	p := protocolOf(e)
	if (p == networkv1alpha2.ProtocolLayer2 || p == networkv1alpha2.ProtocolVIP) && e.Spec.Interface == "" {
		return rng, nil, fmt.Errorf("if protocol is layer2 or vip, interface should not be empty")
	}
	var warn admission.Warnings
	if len(v.EnabledProtocols) > 0 && !slices.Contains(v.EnabledProtocols, p) {
		warn = append(warn, fmt.Sprintf("protocol %s is not enabled in the OpenELB resource (enabled: %s): addresses of this Eip are assigned but not announced until it is",
			p, strings.Join(v.EnabledProtocols, ", ")))
	}
	return rng, warn, nil
}

func dryRun(ctx context.Context) bool {
	req, err := admission.RequestFromContext(ctx)
	return err == nil && req.DryRun != nil && *req.DryRun
}

// ValidateCreate implements admission.CustomValidator.
func (v *EipValidator) ValidateCreate(ctx context.Context, obj runtime.Object) (admission.Warnings, error) {
	e := obj.(*networkv1alpha2.Eip)
	rng, warn, err := v.check(e)
	if err != nil {
		return warn, err
	}
	return warn, v.reserve(ctx, e, rng)
}

func (v *EipValidator) reserve(ctx context.Context, e *networkv1alpha2.Eip, rng ipam.Range) error {
	deny, err := v.Record.Reserve(ctx, Claim{Name: e.Name, UID: e.UID, Range: rng, Default: kube.IsDefault(e)}, dryRun(ctx))
	if err != nil {
		return fmt.Errorf("cannot check Eip overlaps: %w", err)
	}
	if deny != "" {
		return fmt.Errorf("%s", deny)
	}
	return nil
}

// ValidateUpdate implements admission.CustomValidator. Unlike OpenELB 0.6,
// spec.address may change while every address in use stays inside it.
func (v *EipValidator) ValidateUpdate(ctx context.Context, oldObj, newObj runtime.Object) (admission.Warnings, error) {
	old, e := oldObj.(*networkv1alpha2.Eip), newObj.(*networkv1alpha2.Eip)
	rng, warn, err := v.check(e)
	if err != nil {
		return warn, err
	}
	if protocolOf(old) == protocolOf(e) {
		warn = nil // warn when the protocol is chosen, not on every update
	}
	addrChanged := old.Spec.Address != e.Spec.Address
	if addrChanged {
		outside, err := v.inUse(ctx, e.Name, func(a netip.Addr) bool { return !rng.Contains(a) })
		if err != nil {
			return warn, err
		}
		if len(outside) > 0 {
			return warn, fmt.Errorf("cannot change the address to %s: addresses in use lie outside it: %s", e.Spec.Address, strings.Join(outside, ", "))
		}
	}
	if addrChanged || (kube.IsDefault(e) && !kube.IsDefault(old)) {
		return warn, v.reserve(ctx, e, rng)
	}
	return warn, nil
}

// ValidateDelete implements admission.CustomValidator: an Eip in use is not
// deleted (OpenELB 0.6 allowed it and renumbered the Services). An admitted
// delete drops the Eip's record entry at once: the record only guards
// creates in flight, existing Eips are checked directly, so if the delete
// fails after all, the Eip still counts.
func (v *EipValidator) ValidateDelete(ctx context.Context, obj runtime.Object) (admission.Warnings, error) {
	e := obj.(*networkv1alpha2.Eip)
	users, err := v.inUse(ctx, e.Name, func(netip.Addr) bool { return true })
	if err != nil {
		return nil, err
	}
	if len(users) > 0 {
		return nil, fmt.Errorf("eip %s is in use by %s: delete those Services or move them to another Eip first", e.Name, strings.Join(users, ", "))
	}
	if !dryRun(ctx) {
		if err := v.Record.Remove(ctx, e.Name, e.UID); err != nil {
			return nil, fmt.Errorf("cannot update the Eip record: %w", err)
		}
	}
	return nil, nil
}

// inUse lists "address (ns/name)" for the addresses of Services recording
// the Eip that match, at most ten plus a count.
func (v *EipValidator) inUse(ctx context.Context, eip string, match func(netip.Addr) bool) ([]string, error) {
	var list corev1.ServiceList
	if err := v.Reader.List(ctx, &list, client.MatchingFields{IndexPool: eip}); err != nil {
		return nil, fmt.Errorf("list services of eip %s: %w", eip, err)
	}
	var out []string
	n := 0
	for i := range list.Items {
		s := &list.Items[i]
		for _, a := range addrsOfPool(s, eip) {
			if match(a) {
				n++
				if len(out) < 10 {
					out = append(out, fmt.Sprintf("%s (%s/%s)", a, s.Namespace, s.Name))
				}
			}
		}
	}
	slices.Sort(out)
	if n > len(out) {
		out = append(out, fmt.Sprintf("and %d more", n-len(out)))
	}
	return out, nil
}

// addrsOfPool returns the ingress addresses a Service records for an Eip:
// by position in allocated-from when it lists one Eip per address, else
// all of them.
func addrsOfPool(s *corev1.Service, eip string) []netip.Addr {
	addrs := kube.IngressAddrs(s)
	pools := strings.Split(s.Annotations[networkv1alpha2.AnnotationAllocatedFrom], ",")
	if len(pools) != len(addrs) || len(addrs) < 2 {
		return addrs
	}
	var out []netip.Addr
	for i, p := range pools {
		if strings.TrimSpace(p) == eip {
			out = append(out, addrs[i])
		}
	}
	return out
}
