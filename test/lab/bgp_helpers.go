//go:build linux

package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
)

// BGP helpers for the BGP-mode scenarios (test/e2e/bgp_*_test.go).

// FRRConfigure runs configuration commands under `router bgp <RouterASN>`
// on the lab's FRR, e.g. FRRConfigure(ctx, "neighbor NODES password s3cret").
func (l *Lab) FRRConfigure(ctx context.Context, cmds ...string) error {
	args := append([]string{"configure terminal", fmt.Sprintf("router bgp %d", RouterASN)}, cmds...)
	_, err := l.Vtysh(ctx, args...)
	return err
}

// BGPPeerUptimes returns, for each neighbour whose session with the lab's
// FRR is Established, when it was established (Unix seconds): a session
// that was reset shows a later value.
func (l *Lab) BGPPeerUptimes(ctx context.Context) (map[netip.Addr]int64, error) {
	out, err := l.Vtysh(ctx, "show bgp summary json")
	if err != nil {
		return nil, err
	}
	return parseFRRUptimes([]byte(out))
}

func parseFRRUptimes(b []byte) (map[netip.Addr]int64, error) {
	var s map[string]struct {
		Peers map[string]struct {
			State string `json:"state"`
			Epoch int64  `json:"peerUptimeEstablishedEpoch"`
		} `json:"peers"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse FRR bgp summary: %w", err)
	}
	up := map[netip.Addr]int64{}
	for _, af := range s {
		for ip, p := range af.Peers {
			if a, err := netip.ParseAddr(ip); err == nil && p.State == "Established" {
				up[a] = p.Epoch
			}
		}
	}
	return up, nil
}

// BGPPrefixesFrom returns how many prefixes FRR accepted from neighbour
// nbr (`show bgp summary json`, pfxRcd over every address family).
func (l *Lab) BGPPrefixesFrom(ctx context.Context, nbr netip.Addr) (int, error) {
	out, err := l.Vtysh(ctx, "show bgp summary json")
	if err != nil {
		return 0, err
	}
	var s map[string]struct {
		Peers map[string]struct {
			PfxRcd int `json:"pfxRcd"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return 0, fmt.Errorf("parse FRR bgp summary: %w", err)
	}
	n := 0
	for _, af := range s {
		for ip, p := range af.Peers {
			if a, err := netip.ParseAddr(ip); err == nil && a == nbr {
				n += p.PfxRcd
			}
		}
	}
	return n, nil
}

// BGPRouteCount returns how many prefixes of the family the routing daemon
// holds in its BGP table (FRR: `show bgp <afi> unicast summary`, the sum of
// the prefixes received from every neighbour; BIRD: `show route count`).
func (l *Lab) BGPRouteCount(ctx context.Context, v6 bool) (int, error) {
	switch l.RouterKind() {
	case FRR:
		afi := "ipv4"
		if v6 {
			afi = "ipv6"
		}
		out, err := l.Vtysh(ctx, fmt.Sprintf("show bgp %s unicast json", afi))
		if err != nil {
			return 0, err
		}
		var s struct {
			Routes map[string]json.RawMessage `json:"routes"`
		}
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			return 0, fmt.Errorf("parse FRR bgp table: %w", err)
		}
		return len(s.Routes), nil
	case BIRD:
		out, err := l.Birdc(ctx, "show", "route", "count")
		if err != nil {
			return 0, err
		}
		// "N of M routes for K networks in table master4"
		want := "master4"
		if v6 {
			want = "master6"
		}
		total := 0
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 9 && f[len(f)-1] == want && f[5] == "networks" {
				n, _ := strconv.Atoi(f[4])
				total += n
			}
		}
		return total, nil
	default:
		return 0, fmt.Errorf("no routing daemon in the router")
	}
}

func fibCount(n *NS, pool netip.Prefix) (int, error) {
	fam := netlink.FAMILY_V4
	if pool.Addr().Is6() {
		fam = netlink.FAMILY_V6
	}
	routes, err := n.nl.RouteListFiltered(fam, &netlink.Route{Table: syscall.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return 0, fmt.Errorf("routes in %s: %w", n.Short, err)
	}
	c := 0
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ones, bits := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP)
		if ok && ones == bits && pool.Contains(a.Unmap()) {
			c++
		}
	}
	return c, nil
}

// RouterFIBCount returns the number of host routes (/32 or /128) inside
// pool in the router's kernel FIB (one netlink dump).
func (l *Lab) RouterFIBCount(pool netip.Prefix) (int, error) {
	return fibCount(l.Router, pool)
}
