package bgp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"
)

// testRouter is a plain gobgp server on loopback standing in for a
// top-of-rack router: it listens on 127.0.0.1 and ::1 and peers passively
// with the neighbours it is told about.
type testRouter struct {
	t    testing.TB
	srv  *server.BgpServer
	port int
	asn  uint32
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newTestRouter(t testing.TB, asn uint32, routerID string) *testRouter {
	t.Helper()
	disableMPTCPListeners()
	r := &testRouter{t: t, asn: asn, port: freePort(t)}
	r.srv = server.NewBgpServer(server.LoggerOption(newLogBridge(logr.Discard(), nil)))
	go r.srv.Serve()
	err := r.srv.StartBgp(context.Background(), &api.StartBgpRequest{Global: &api.Global{
		Asn: asn, RouterId: routerID, ListenPort: int32(r.port), ListenAddresses: []string{"127.0.0.1", "::1"},
		UseMultiplePaths: true,
	}})
	if err != nil {
		t.Fatalf("start router: %v", err)
	}
	t.Cleanup(func() { _ = r.srv.StopBgp(context.Background(), &api.StopBgpRequest{}) })
	return r
}

// addNeighbor makes the router accept a session from addr (passive).
func (r *testRouter) addNeighbor(addr string, asn uint32, password string, families ...*api.Family) {
	r.t.Helper()
	p := &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: addr, PeerAsn: asn, AuthPassword: password},
		Transport: &api.Transport{PassiveMode: true},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 9, KeepaliveInterval: 3}},
	}
	for _, f := range families {
		p.AfiSafis = append(p.AfiSafis, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}})
	}
	if err := r.srv.AddPeer(context.Background(), &api.AddPeerRequest{Peer: p}); err != nil {
		r.t.Fatalf("router: add neighbour %s: %v", addr, err)
	}
}

// peerTo returns a speaker-side neighbour configuration towards the router
// from the local address local.
func (r *testRouter) peerTo(name, local string, localAS uint32) Peer {
	nbr := "127.0.0.1"
	afi := api.Family_AFI_IP
	if netip.MustParseAddr(local).Is6() {
		nbr, afi = "::1", api.Family_AFI_IP6
	}
	return Peer{Name: name, Spec: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: nbr, PeerAsn: r.asn, LocalAsn: localAS},
		Transport: &api.Transport{LocalAddress: local, RemotePort: uint32(r.port)},
		Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, HoldTime: 9, KeepaliveInterval: 3}},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST}, Enabled: true}}},
	}}
}

// rib returns prefix → sorted next hops in the router's global RIB.
func (r *testRouter) rib(family *api.Family) map[string][]string {
	r.t.Helper()
	out := map[string][]string{}
	err := r.srv.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: family}, func(d *api.Destination) {
		for _, p := range d.Paths {
			out[d.Prefix] = append(out[d.Prefix], nextHop(r.t, p))
		}
		sort.Strings(out[d.Prefix])
	})
	if err != nil {
		r.t.Fatalf("router: list paths: %v", err)
	}
	return out
}

func nextHop(t testing.TB, p *api.Path) string {
	for _, a := range p.Pattrs {
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatal(err)
		}
		switch v := m.(type) {
		case *api.NextHopAttribute:
			return v.NextHop
		case *api.MpReachNLRIAttribute:
			return v.NextHops[0]
		}
	}
	return ""
}

// session returns the router's view of neighbour addr.
func (r *testRouter) session(addr string) *api.Peer {
	r.t.Helper()
	var out *api.Peer
	err := r.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: addr}, func(p *api.Peer) { out = p })
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

func (r *testRouter) established(addr string) bool {
	p := r.session(addr)
	return p != nil && p.State.SessionState == api.PeerState_ESTABLISHED
}

// uptime is when the router's session with addr was established.
func (r *testRouter) uptime(addr string) time.Time {
	p := r.session(addr)
	if p == nil || p.Timers.GetState().GetUptime() == nil {
		return time.Time{}
	}
	return p.Timers.State.Uptime.AsTime()
}

// announce makes the router advertise prefix to its neighbours.
func (r *testRouter) announce(prefix string, bits uint32) {
	r.t.Helper()
	nlri, _ := anypb.New(&api.IPAddressPrefix{Prefix: prefix, PrefixLen: bits})
	o, _ := anypb.New(&api.OriginAttribute{})
	nh, _ := anypb.New(&api.NextHopAttribute{NextHop: "127.0.0.1"})
	if _, err := r.srv.AddPath(context.Background(), &api.AddPathRequest{Path: &api.Path{Family: familyV4, Nlri: nlri, Pattrs: []*anypb.Any{o, nh}}}); err != nil {
		r.t.Fatal(err)
	}
}

// eventually polls cond every 20 ms for at most d.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", d, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newTestEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := NewEngine(EngineOptions{}, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(context.Background(), false) })
	return e
}

func global(asn uint32, routerID string) *api.Global {
	return &api.Global{Asn: asn, RouterId: routerID, ListenPort: -1}
}

func config(g *api.Global, peers ...Peer) Config {
	c := Config{Global: g, Peers: map[string]Peer{}, PeerResults: map[string]PeerResult{}}
	for _, p := range peers {
		c.Peers[p.Spec.Conf.NeighborAddress] = p
		c.PeerResults[p.Name] = PeerResult{Selected: true, Neighbor: p.Spec.Conf.NeighborAddress}
	}
	return c
}

func routes(rs ...Route) map[netip.Prefix]Route {
	out := map[netip.Prefix]Route{}
	for _, r := range rs {
		out[r.Prefix] = r
	}
	return out
}

func route(prefix, nh string) Route {
	return Route{Prefix: netip.MustParsePrefix(prefix), NextHop: netip.MustParseAddr(nh)}
}

func wantRIB(t *testing.T, r *testRouter, fam *api.Family, want map[string][]string) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("router RIB %v", want), func() (bool, string) {
		got := r.rib(fam)
		if len(got) != len(want) {
			return false, fmt.Sprint(got)
		}
		for k, v := range want {
			if !slices.Equal(got[k], v) {
				return false, fmt.Sprint(got)
			}
		}
		return true, ""
	})
}
