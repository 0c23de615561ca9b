package bgp

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/proto"
)

// These tests run the Engine against plain gobgp servers on loopback
// (two in-process BGP speakers, as gobgp's own server tests do) and assert
// what the router's RIB holds.

const speakerAS, routerAS = 64512, 64500

func TestEngineAdvertisesAndWithdraws(t *testing.T) {
	ctx := context.Background()
	r := newTestRouter(t, routerAS, "10.0.0.1")
	r.addNeighbor("127.0.0.2", speakerAS, "")
	r.addNeighbor("::1", speakerAS, "", familyV6)
	e := newTestEngine(t)
	if err := e.SetRoutes(ctx, routes(route("203.0.113.10/32", "198.51.100.11"))); err != nil {
		t.Fatal(err)
	}
	// Routes set before BGP runs are kept and advertised once it starts.
	if err := e.Configure(ctx, config(global(speakerAS, "10.0.0.2"), r.peerTo("v4", "127.0.0.2", 0), r.peerTo("v6", "::1", 0))); err != nil {
		t.Fatal(err)
	}
	wantRIB(t, r, familyV4, map[string][]string{"203.0.113.10/32": {"198.51.100.11"}})

	// Adding an address and an IPv6 one: /128 over the IPv6 session, with
	// the node's own IPv6 address as next hop.
	all := routes(route("203.0.113.10/32", "198.51.100.11"), route("203.0.113.11/32", "198.51.100.11"),
		route("2001:db8:ffff::10/128", "2001:db8::11"))
	if err := e.SetRoutes(ctx, all); err != nil {
		t.Fatal(err)
	}
	wantRIB(t, r, familyV4, map[string][]string{"203.0.113.10/32": {"198.51.100.11"}, "203.0.113.11/32": {"198.51.100.11"}})
	wantRIB(t, r, familyV6, map[string][]string{"2001:db8:ffff::10/128": {"2001:db8::11"}})

	// An unspecified next hop becomes the session's local address.
	if err := e.SetRoutes(ctx, routes(route("203.0.113.10/32", "0.0.0.0"))); err != nil {
		t.Fatal(err)
	}
	wantRIB(t, r, familyV4, map[string][]string{"203.0.113.10/32": {"127.0.0.2"}})
	wantRIB(t, r, familyV6, map[string][]string{})

	if err := e.SetRoutes(ctx, nil); err != nil {
		t.Fatal(err)
	}
	wantRIB(t, r, familyV4, map[string][]string{})
	if got := len(e.Advertised()); got != 0 {
		t.Errorf("Advertised() has %d routes after withdrawing all", got)
	}
}

func TestEngineRejectsReceivedRoutes(t *testing.T) {
	ctx := context.Background()
	r := newTestRouter(t, routerAS, "10.0.0.1")
	r.addNeighbor("127.0.0.2", speakerAS, "")
	r.announce("198.18.0.0", 24)
	e := newTestEngine(t)
	if err := e.Configure(ctx, config(global(speakerAS, "10.0.0.2"), r.peerTo("up", "127.0.0.2", 0))); err != nil {
		t.Fatal(err)
	}
	// No neighbour before the routes are known (a restarted speaker must
	// not open a session with an empty RIB).
	if ss, err := e.Sessions(ctx, false); err != nil || len(ss) != 0 {
		t.Fatalf("neighbours before the first SetRoutes: %v %v", ss, err)
	}
	if err := e.SetRoutes(ctx, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the router's route received and rejected", func() (bool, string) {
		ss, err := e.Sessions(ctx, true)
		if err != nil || len(ss) != 1 {
			return false, fmt.Sprint(ss, err)
		}
		return ss[0].Established() && ss[0].Received == 1, fmt.Sprintf("%+v", ss[0])
	})
	var n int
	if err := e.srv.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: familyV4}, func(*api.Destination) { n++ }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("speaker's RIB holds %d destinations, want 0 (the import policy rejects everything)", n)
	}
}

// TestEnginePeerChangesAreIncremental changes, resets and removes one
// neighbour and checks that the other session stays up with its routes.
func TestEnginePeerChangesAreIncremental(t *testing.T) {
	ctx := context.Background()
	r1 := newTestRouter(t, routerAS, "10.0.0.1")
	r2 := newTestRouter(t, routerAS+1, "10.0.0.3")
	r1.addNeighbor("127.0.0.2", speakerAS, "")
	r2.addNeighbor("127.0.0.2", speakerAS, "")
	e := newTestEngine(t)
	rs := routes(route("203.0.113.10/32", "198.51.100.11"))
	if err := e.SetRoutes(ctx, rs); err != nil {
		t.Fatal(err)
	}
	p1, p2 := r1.peerTo("one", "127.0.0.2", 0), r2.peerTo("two", "127.0.0.2", 0)
	// Both routers listen on 127.0.0.1: tell them apart by remote port,
	// one neighbour address per router is what gobgp keys on, so the
	// second router is reached through 127.0.0.1's alias ::ffff? No: use a
	// second loopback address as the neighbour.
	p2.Spec.Conf.NeighborAddress = "127.0.0.3"
	if err := r2.srv.StopBgp(ctx, &api.StopBgpRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := r2.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: routerAS + 1, RouterId: "10.0.0.3",
		ListenPort: int32(r2.port), ListenAddresses: []string{"127.0.0.3"}}}); err != nil {
		t.Fatal(err)
	}
	r2.addNeighbor("127.0.0.2", speakerAS, "")
	if err := e.Configure(ctx, config(global(speakerAS, "10.0.0.2"), p1, p2)); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"203.0.113.10/32": {"198.51.100.11"}}
	wantRIB(t, r1, familyV4, want)
	wantRIB(t, r2, familyV4, want)
	up2 := r2.uptime("127.0.0.2")

	// A description change is applied live; a hold-time change resets only
	// that session.
	p1.Spec = proto.Clone(p1.Spec).(*api.Peer)
	p1.Spec.Conf.Description = "tor-1"
	if err := e.Configure(ctx, config(global(speakerAS, "10.0.0.2"), p1, p2)); err != nil {
		t.Fatal(err)
	}
	up1 := r1.uptime("127.0.0.2")
	p1.Spec = proto.Clone(p1.Spec).(*api.Peer)
	p1.Spec.Timers.Config.HoldTime, p1.Spec.Timers.Config.KeepaliveInterval = 6, 2
	if err := e.Configure(ctx, config(global(speakerAS, "10.0.0.2"), p1, p2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "router 1 session re-established with hold time 6", func() (bool, string) {
		s := r1.session("127.0.0.2")
		return r1.established("127.0.0.2") && s.Timers.State.NegotiatedHoldTime == 6, fmt.Sprint(s.GetState().GetSessionState(), s.GetTimers().GetState())
	})
	if !r1.uptime("127.0.0.2").After(up1) && !up1.IsZero() {
		// uptime has a 1 s resolution: the reset is proven by the new hold time.
		t.Logf("router 1 uptime unchanged at 1 s resolution")
	}
	wantRIB(t, r1, familyV4, want)
	if got := r2.uptime("127.0.0.2"); !got.Equal(up2) || !r2.established("127.0.0.2") {
		t.Errorf("router 2 session was reset by a change of the other neighbour: uptime %v → %v", up2, got)
	}
	wantRIB(t, r2, familyV4, want)

	// Removing neighbour one leaves two alone.
	if err := e.Configure(ctx, config(global(speakerAS, "10.0.0.2"), p2)); err != nil {
		t.Fatal(err)
	}
	wantRIB(t, r1, familyV4, map[string][]string{})
	if got := r2.uptime("127.0.0.2"); !got.Equal(up2) || !r2.established("127.0.0.2") {
		t.Errorf("router 2 session was reset by removing the other neighbour: uptime %v → %v", up2, got)
	}
	wantRIB(t, r2, familyV4, want)
	if e.Restarts() != 0 {
		t.Errorf("gobgp restarted %d times for peer changes", e.Restarts())
	}
}

// TestEngineGlobalChanges: a policy change is applied live; a router-ID
// change restarts gobgp and every route is advertised again.
func TestEngineGlobalChanges(t *testing.T) {
	ctx := context.Background()
	r := newTestRouter(t, routerAS, "10.0.0.1")
	r.addNeighbor("127.0.0.2", speakerAS, "")
	e := newTestEngine(t)
	rs := routes(route("203.0.113.10/32", "198.51.100.11"), route("203.0.113.11/32", "198.51.100.11"))
	if err := e.SetRoutes(ctx, rs); err != nil {
		t.Fatal(err)
	}
	p := r.peerTo("up", "127.0.0.2", 0)
	c := config(global(speakerAS, "10.0.0.2"), p)
	if err := e.Configure(ctx, c); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"203.0.113.10/32": {"198.51.100.11"}, "203.0.113.11/32": {"198.51.100.11"}}
	wantRIB(t, r, familyV4, want)
	up := r.uptime("127.0.0.2")

	// Export policy: reject 203.0.113.11/32, live.
	pol, err := ParsePolicy(`
[[defined-sets.prefix-sets]]
  prefix-set-name = "eleven"
  [[defined-sets.prefix-sets.prefix-list]]
    ip-prefix = "203.0.113.11/32"
[[policy-definitions]]
  name = "drop-eleven"
  [[policy-definitions.statements]]
    name = "s1"
    [policy-definitions.statements.conditions.match-prefix-set]
      prefix-set = "eleven"
    [policy-definitions.statements.actions]
      route-disposition = "reject-route"
[global.apply-policy.config]
  export-policy-list = ["drop-eleven"]
  default-export-policy = "accept-route"
`)
	if err != nil {
		t.Fatal(err)
	}
	c.Policy = pol
	if err := e.Configure(ctx, c); err != nil {
		t.Fatal(err)
	}
	wantRIB(t, r, familyV4, map[string][]string{"203.0.113.10/32": {"198.51.100.11"}})
	if got := r.uptime("127.0.0.2"); !got.Equal(up) {
		t.Errorf("policy change reset the session: uptime %v → %v", up, got)
	}
	if e.Restarts() != 0 {
		t.Errorf("policy change restarted gobgp")
	}

	// A broken policy keeps the running one.
	c.Policy, c.PolicyErr = nil, "ConfigMap x not found"
	if err := e.Configure(ctx, c); err != nil {
		t.Fatal(err)
	}
	if e.policy == nil || e.policy.Export[0] != "drop-eleven" {
		t.Errorf("a policy error replaced the running policy: %+v", e.policy)
	}

	// Router ID change: restart, every route pushed again.
	c.Policy, c.PolicyErr = nil, ""
	c.Global = global(speakerAS, "10.0.0.9")
	if err := e.Configure(ctx, c); err != nil {
		t.Fatal(err)
	}
	if e.Restarts() != 1 {
		t.Errorf("router ID change: %d restarts, want 1", e.Restarts())
	}
	eventually(t, 15*time.Second, "session with the new router ID", func() (bool, string) {
		s := r.session("127.0.0.2")
		return r.established("127.0.0.2") && s.State.RouterId == "10.0.0.9", fmt.Sprint(s.GetState())
	})
	wantRIB(t, r, familyV4, want)

	// No BgpConf any more: BGP stops, routes withdrawn.
	if err := e.Configure(ctx, Config{NotConfigured: "no BgpConf"}); err != nil {
		t.Fatal(err)
	}
	wantRIB(t, r, familyV4, map[string][]string{})
	if e.Running() != nil {
		t.Error("BGP still runs without configuration")
	}
}

func TestEngineWrongPasswordReported(t *testing.T) {
	ctx := context.Background()
	r := newTestRouter(t, routerAS, "10.0.0.1")
	r.addNeighbor("127.0.0.2", speakerAS, "right")
	r.addNeighbor("127.0.0.4", speakerAS, "right")
	e := newTestEngine(t)
	bad := r.peerTo("bad", "127.0.0.2", 0)
	bad.Spec.Conf.AuthPassword = "wrong"
	_ = e.SetRoutes(ctx, nil)
	if err := e.Configure(ctx, config(global(speakerAS, "10.0.0.2"), bad)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the session's last error", func() (bool, string) {
		ss, err := e.Sessions(ctx, false)
		if err != nil || len(ss) != 1 {
			return false, fmt.Sprint(ss, err)
		}
		return !ss[0].Established() && strings.Contains(ss[0].LastError, "TCP-MD5"), fmt.Sprintf("%+v", ss[0])
	})

	good := r.peerTo("good", "127.0.0.4", 0)
	good.Spec.Conf.AuthPassword = "right"
	e2 := newTestEngine(t)
	_ = e2.SetRoutes(ctx, nil)
	if err := e2.Configure(ctx, config(global(speakerAS, "10.0.0.4"), good)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "session with the right password", func() (bool, string) {
		return r.established("127.0.0.4"), ""
	})
	if r.established("127.0.0.2") {
		t.Error("session with the wrong password is established")
	}
}

func TestEngineStopClosesSessions(t *testing.T) {
	ctx := context.Background()
	r := newTestRouter(t, routerAS, "10.0.0.1")
	r.addNeighbor("127.0.0.2", speakerAS, "")
	e := newTestEngine(t)
	if err := e.SetRoutes(ctx, routes(route("203.0.113.10/32", "198.51.100.11"))); err != nil {
		t.Fatal(err)
	}
	if err := e.Configure(ctx, config(global(speakerAS, "10.0.0.2"), r.peerTo("up", "127.0.0.2", 0))); err != nil {
		t.Fatal(err)
	}
	wantRIB(t, r, familyV4, map[string][]string{"203.0.113.10/32": {"198.51.100.11"}})
	start := time.Now()
	e.Stop(ctx, false)
	wantRIB(t, r, familyV4, map[string][]string{})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("withdrawal after Stop took %v (CEASE should end the session at once)", d)
	}
	// Stop is final.
	if err := e.SetRoutes(ctx, routes(route("203.0.113.12/32", "198.51.100.11"))); err != nil {
		t.Fatal(err)
	}
	if e.Running() != nil {
		t.Error("BGP runs after Stop")
	}
}

func TestValidateGRPCAddress(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"", true}, {"127.0.0.1:50051", true}, {":50051", false}, {"0.0.0.0:50051", false},
		{"198.51.100.11:50051", false}, {"[::1]:50051", false}, {"127.0.0.1:0", false}, {"localhost:50051", false},
	} {
		if err := ValidateGRPCAddress(tc.addr); (err == nil) != tc.ok {
			t.Errorf("ValidateGRPCAddress(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

// TestEngineAttributes: communities reach the router and a change of them
// replaces the path (one path per prefix, new attributes).
func TestEngineAttributes(t *testing.T) {
	ctx := context.Background()
	r := newTestRouter(t, routerAS, "10.0.0.1")
	r.addNeighbor("127.0.0.2", speakerAS, "")
	e := newTestEngine(t)
	rt := route("203.0.113.10/32", "198.51.100.11")
	rt.Communities = "64512:7"
	if err := e.SetRoutes(ctx, routes(rt)); err != nil {
		t.Fatal(err)
	}
	if err := e.Configure(ctx, config(global(speakerAS, "10.0.0.2"), r.peerTo("up", "127.0.0.2", 0))); err != nil {
		t.Fatal(err)
	}
	communities := func() ([]uint32, int) {
		var out []uint32
		n := 0
		_ = r.srv.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: familyV4}, func(d *api.Destination) {
			for _, p := range d.Paths {
				n++
				for _, a := range p.Pattrs {
					if m, err := a.UnmarshalNew(); err == nil {
						if c, ok := m.(*api.CommunitiesAttribute); ok {
							out = append(out, c.Communities...)
						}
					}
				}
			}
		})
		return out, n
	}
	eventually(t, 10*time.Second, "community 64512:7 at the router", func() (bool, string) {
		c, n := communities()
		return n == 1 && len(c) == 1 && c[0] == 64512<<16|7, fmt.Sprint(c, n)
	})
	rt.Communities = "64512:8,64512:9"
	if err := e.SetRoutes(ctx, routes(rt)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "communities replaced on the one path", func() (bool, string) {
		c, n := communities()
		return n == 1 && len(c) == 2 && c[0] == 64512<<16|8, fmt.Sprint(c, n)
	})
}

// TestEnginePassivePeer: with transport.passiveMode the speaker waits for
// the router to connect (here to its listener on 127.0.0.5).
func TestEnginePassivePeer(t *testing.T) {
	ctx := context.Background()
	port := freePort(t)
	r := newTestRouter(t, routerAS, "10.0.0.1")
	// The router dials the speaker.
	err := r.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.5", PeerAsn: speakerAS},
		Transport: &api.Transport{LocalAddress: "127.0.0.6", RemotePort: uint32(port)},
		Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, HoldTime: 9, KeepaliveInterval: 3}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEngine(t)
	if err := e.SetRoutes(ctx, routes(route("203.0.113.10/32", "198.51.100.11"))); err != nil {
		t.Fatal(err)
	}
	g := &api.Global{Asn: speakerAS, RouterId: "10.0.0.5", ListenPort: int32(port), ListenAddresses: []string{"127.0.0.5"}}
	p := Peer{Name: "passive", Spec: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.6", PeerAsn: routerAS},
		Transport: &api.Transport{PassiveMode: true},
		Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, HoldTime: 9, KeepaliveInterval: 3}},
	}}
	if err := e.Configure(ctx, config(g, p)); err != nil {
		t.Fatal(err)
	}
	wantRIB(t, r, familyV4, map[string][]string{"203.0.113.10/32": {"198.51.100.11"}})
}
