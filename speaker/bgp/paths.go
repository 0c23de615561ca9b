package bgp

import (
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/openelb/openelb-operator/speaker"
)

// A Route is one path the speaker originates: a service address as a host
// prefix (/32 or /128) with this node as next hop.
type Route struct {
	Prefix netip.Prefix
	// NextHop is this node's InternalIP of the prefix's family; when the node
	// has none, it is unspecified and gobgp uses the session's local address.
	NextHop netip.Addr
}

// Routes returns the routes this node advertises for s: one host prefix per
// address whose eligible nodes include this node, next hop itself. No path
// carries another node's address (no third-party next hops): every
// eligible node advertises itself and the routers do plain ECMP.
func Routes(s speaker.State) map[netip.Prefix]Route {
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
		r := Route{Prefix: netip.PrefixFrom(ip, ip.BitLen())}
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
	if r.Prefix.Addr().Is4() {
		nh, err := anypb.New(&api.NextHopAttribute{NextHop: r.NextHop.String()})
		if err != nil {
			return nil, fmt.Errorf("encode next hop: %w", err)
		}
		return &api.Path{Family: familyV4, Nlri: nlri, Pattrs: []*anypb.Any{origin, nh}}, nil
	}
	mp, err := anypb.New(&api.MpReachNLRIAttribute{Family: familyV6, NextHops: []string{r.NextHop.String()}, Nlris: []*anypb.Any{nlri}})
	if err != nil {
		return nil, fmt.Errorf("encode next hop: %w", err)
	}
	return &api.Path{Family: familyV6, Nlri: nlri, Pattrs: []*anypb.Any{origin, mp}}, nil
}
