package ipam

import (
	"fmt"
	"net/netip"
	"strings"
)

// ServiceKey names a Service.
type ServiceKey struct{ Namespace, Name string }

// String returns "namespace/name", the form OpenELB writes in status.used.
func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

// Port is one port of a Service, for the sharing rules.
type Port struct {
	Protocol string // TCP, UDP or SCTP
	Port     int32
}

// FamilyRequest is one family a Service wants an address of.
type FamilyRequest struct {
	Family Family
	// Optional families (PreferDualStack's second family) are skipped
	// without error when no pool can serve them.
	Optional bool
}

// Service is what a Service asks for, and the facts the sharing rules need.
type Service struct {
	Key ServiceKey
	// NamespaceLabels are the labels of the Service's namespace, for
	// namespaceSelector.
	NamespaceLabels map[string]string
	// Families wanted, in ingress order. Empty means one address of any
	// family (a Service without spec.ipFamilies).
	Families []FamilyRequest
	// Eips are the explicitly named pools (at most one per family).
	Eips []string
	// Addrs are the explicitly requested addresses (at most one per
	// family).
	Addrs []netip.Addr
	// Ports, Local (externalTrafficPolicy: Local) and SharingKey decide
	// whether an address may be shared.
	Ports      []Port
	Local      bool
	SharingKey string
}

// requested returns the requested address of family f.
func (s *Service) requested(f Family) (netip.Addr, bool) {
	for _, a := range s.Addrs {
		if f == 0 || FamilyOf(a) == f {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func (s *Service) wants(f Family) bool {
	if len(s.Families) == 0 {
		return true
	}
	for _, r := range s.Families {
		if r.Family == f {
			return true
		}
	}
	return false
}

// CanShare reports whether the Services a and b may hold the same address,
// and why not. Within one namespace (without isolation) they may when
// their ports do not clash, their externalTrafficPolicy agrees and they do
// not carry different sharing keys. Across namespaces, or with namespace
// isolation, both must also carry the same non-empty sharing key.
func CanShare(a, b *Service, isolation bool) error {
	if a.Key == b.Key {
		return nil
	}
	sameNS := a.Key.Namespace == b.Key.Namespace
	switch {
	case !sameNS || isolation:
		if a.SharingKey == "" || a.SharingKey != b.SharingKey {
			why := "Services in different namespaces"
			if sameNS {
				why = "with namespace isolation, Services"
			}
			return errorf(ReasonConflict, "%s share an address only when both carry the same openelb.kubesphere.io/allow-shared-ip key (%s has %q, %s has %q)",
				why, a.Key, a.SharingKey, b.Key, b.SharingKey)
		}
	case a.SharingKey != "" && b.SharingKey != "" && a.SharingKey != b.SharingKey:
		return errorf(ReasonConflict, "%s and %s carry different openelb.kubesphere.io/allow-shared-ip keys (%q, %q)",
			a.Key, b.Key, a.SharingKey, b.SharingKey)
	}
	if a.Local != b.Local {
		return errorf(ReasonConflict, "%s and %s have different externalTrafficPolicy (%s, %s)", a.Key, b.Key, etp(a.Local), etp(b.Local))
	}
	var clash []string
	for _, p := range a.Ports {
		for _, q := range b.Ports {
			if p.Port == q.Port && strings.EqualFold(proto(p.Protocol), proto(q.Protocol)) {
				clash = append(clash, fmt.Sprintf("%s/%d", proto(p.Protocol), p.Port))
			}
		}
	}
	if len(clash) > 0 {
		return errorf(ReasonConflict, "%s and %s both use port %s", a.Key, b.Key, strings.Join(clash, ", "))
	}
	return nil
}

func proto(p string) string {
	if p == "" {
		return "TCP"
	}
	return strings.ToUpper(p)
}

func etp(local bool) string {
	if local {
		return "Local"
	}
	return "Cluster"
}
