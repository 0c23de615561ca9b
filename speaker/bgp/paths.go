package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"
	"k8s.io/apimachinery/pkg/types"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/speaker"
)

// A Route is one path the speaker originates: a service address as a host
// prefix (/32 or /128) with this node as next hop.
type Route struct {
	Prefix netip.Prefix
	// NextHop is this node's InternalIP of the prefix's family; when the node
	// has none, it is unspecified and gobgp uses the session's local address.
	NextHop netip.Addr
	Attrs
}

// Attrs are optional path attributes of a route (annotations
// bgp.openelb.kubesphere.io/communities and /local-pref).
type Attrs struct {
	// Communities is the canonical form ParseCommunities returns ("" none).
	Communities string
	// LocalPref is LOCAL_PREF (0: none; gobgp sends 100 to iBGP neighbours).
	LocalPref uint32
}

// Routes returns the routes this node advertises for s: one host prefix per
// address whose eligible nodes include this node, next hop itself. No path
// carries another node's address (no third-party next hops): every
// eligible node advertises itself and the routers do plain ECMP.
//
// attrs gives the optional attributes per address (nil: none).
func Routes(s speaker.State, attrs map[netip.Addr]Attrs) map[netip.Prefix]Route {
	self := s.Nodes[s.Self]
	var v4, v6 netip.Addr
	for _, a := range self.Addresses {
		switch {
		case a.Is4() && !v4.IsValid():
			v4 = a
		case a.Is6() && !a.Is4In6() && !v6.IsValid():
			v6 = a
		}
	}
	out := make(map[netip.Prefix]Route)
	for _, a := range s.Announcements {
		if !a.Eligible(s.Self) || !a.IP.IsValid() {
			continue
		}
		ip := a.IP.Unmap()
		r := Route{Prefix: netip.PrefixFrom(ip, ip.BitLen()), Attrs: attrs[ip]}
		switch {
		case ip.Is4() && v4.IsValid():
			r.NextHop = v4
		case ip.Is4():
			r.NextHop = netip.IPv4Unspecified()
		case v6.IsValid():
			r.NextHop = v6
		default:
			r.NextHop = netip.IPv6Unspecified()
		}
		out[r.Prefix] = r
	}
	return out
}

var (
	familyV4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyV6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// apiPath builds gobgp's path for r: origin IGP, NEXT_HOP (IPv4) or
// MP_REACH_NLRI (IPv6).
func (r Route) apiPath() (*api.Path, error) {
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: r.Prefix.Addr().String(), PrefixLen: uint32(r.Prefix.Bits())})
	if err != nil {
		return nil, fmt.Errorf("encode prefix %s: %w", r.Prefix, err)
	}
	origin, err := anypb.New(&api.OriginAttribute{Origin: 0})
	if err != nil {
		return nil, fmt.Errorf("encode origin: %w", err)
	}
	attrs := []*anypb.Any{origin}
	fam := familyV4
	if r.Prefix.Addr().Is4() {
		nh, err := anypb.New(&api.NextHopAttribute{NextHop: r.NextHop.String()})
		if err != nil {
			return nil, fmt.Errorf("encode next hop: %w", err)
		}
		attrs = append(attrs, nh)
	} else {
		fam = familyV6
		mp, err := anypb.New(&api.MpReachNLRIAttribute{Family: familyV6, NextHops: []string{r.NextHop.String()}, Nlris: []*anypb.Any{nlri}})
		if err != nil {
			return nil, fmt.Errorf("encode next hop: %w", err)
		}
		attrs = append(attrs, mp)
	}
	if r.Communities != "" {
		cs, err := ParseCommunities(r.Communities)
		if err != nil {
			return nil, err
		}
		a, err := anypb.New(&api.CommunitiesAttribute{Communities: cs})
		if err != nil {
			return nil, fmt.Errorf("encode communities: %w", err)
		}
		attrs = append(attrs, a)
	}
	if r.LocalPref != 0 {
		a, err := anypb.New(&api.LocalPrefAttribute{LocalPref: r.LocalPref})
		if err != nil {
			return nil, fmt.Errorf("encode local-pref: %w", err)
		}
		attrs = append(attrs, a)
	}
	return &api.Path{Family: fam, Nlri: nlri, Pattrs: attrs}, nil
}

var wellKnownCommunities = map[string]uint32{
	"no-export": 0xFFFFFF01, "no-advertise": 0xFFFFFF02, "no-export-subconfed": 0xFFFFFF03,
}

// ParseCommunities parses a comma list of standard communities ("AS:value"
// with both parts 0–65535, or no-export, no-advertise,
// no-export-subconfed) into their values, sorted and without duplicates.
func ParseCommunities(s string) ([]uint32, error) {
	var out []uint32
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if v, ok := wellKnownCommunities[strings.ToLower(f)]; ok {
			out = append(out, v)
			continue
		}
		as, val, ok := strings.Cut(f, ":")
		a, err1 := strconv.ParseUint(as, 10, 16)
		v, err2 := strconv.ParseUint(val, 10, 16)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("community %q is not AS:value (0-65535 each) or no-export, no-advertise, no-export-subconfed", f)
		}
		out = append(out, uint32(a)<<16|uint32(v))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// CanonicalCommunities returns the canonical form of a community list
// ("" when empty), or an error.
func CanonicalCommunities(s string) (string, error) {
	cs, err := ParseCommunities(s)
	if err != nil {
		return "", err
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%d:%d", c>>16, c&0xFFFF)
	}
	return strings.Join(parts, ","), nil
}

// ParseLocalPref parses a LOCAL_PREF value (1–4294967295).
func ParseLocalPref(s string) (uint32, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("local-pref %q is not a number from 1 to 4294967295", s)
	}
	return uint32(v), nil
}

// An AttrProblem is an annotation that cannot be used.
type AttrProblem struct {
	// Service is set for a Service's annotation, else Eip names the Eip.
	Service types.NamespacedName
	Eip     string
	Message string
}

// RouteAttrs computes, purely, the optional attributes of each address from
// the annotations of its Eip and Services (eips and svcs map names to
// annotations). A Service's annotation wins over its Eip's; of several
// Services sharing an address, the first by namespace and name that sets
// it. Bad values are reported and ignored.
func RouteAttrs(anns []speaker.Announcement, eips map[string]map[string]string, svcs map[types.NamespacedName]map[string]string) (map[netip.Addr]Attrs, []AttrProblem) {
	out := map[netip.Addr]Attrs{}
	var problems []AttrProblem
	seen := map[string]bool{}
	report := func(p AttrProblem) {
		k := p.Eip + "/" + p.Service.String() + "/" + p.Message
		if !seen[k] {
			seen[k] = true
			problems = append(problems, p)
		}
	}
	parse := func(a map[string]string, where AttrProblem) (comm string, commSet bool, lp uint32, lpSet bool) {
		if v, ok := a[networkv1alpha2.AnnotationBGPCommunities]; ok {
			c, err := CanonicalCommunities(v)
			if err != nil {
				where.Message = networkv1alpha2.AnnotationBGPCommunities + ": " + err.Error()
				report(where)
			} else {
				comm, commSet = c, true
			}
		}
		if v, ok := a[networkv1alpha2.AnnotationBGPLocalPref]; ok {
			p, err := ParseLocalPref(v)
			if err != nil {
				where.Message = networkv1alpha2.AnnotationBGPLocalPref + ": " + err.Error()
				report(where)
			} else {
				lp, lpSet = p, true
			}
		}
		return
	}
	for _, a := range anns {
		var at Attrs
		if c, ok, lp, lpOK := parse(eips[a.Eip], AttrProblem{Eip: a.Eip}); ok || lpOK {
			if ok {
				at.Communities = c
			}
			if lpOK {
				at.LocalPref = lp
			}
		}
		commDone, lpDone := false, false
		for _, s := range a.Services { // sorted by the core
			c, ok, lp, lpOK := parse(svcs[s], AttrProblem{Service: s})
			if ok && !commDone {
				at.Communities, commDone = c, true
			}
			if lpOK && !lpDone {
				at.LocalPref, lpDone = lp, true
			}
		}
		if at != (Attrs{}) {
			out[a.IP.Unmap()] = at
		}
	}
	return out, problems
}
