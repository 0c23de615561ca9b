package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/proto"
)

// EngineOptions configure an Engine.
type EngineOptions struct {
	// GRPCAddress enables gobgp's gRPC API (for the gobgp CLI) on this
	// address, which must be 127.0.0.1:<port>; empty disables it.
	GRPCAddress string
	// OnChange is called, without locks held, when a session changes state
	// or reports an error (to refresh status and metrics).
	OnChange func()
}

// ValidateGRPCAddress accepts "" (off) and 127.0.0.1:<port> only: gobgp's
// API has no authentication, so it never listens beyond the node itself.
func ValidateGRPCAddress(addr string) error {
	if addr == "" {
		return nil
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Addr() != netip.MustParseAddr("127.0.0.1") || ap.Port() == 0 {
		return fmt.Errorf("--bgp-grpc-address %q: only 127.0.0.1:<port> is accepted (gobgp's API is unauthenticated)", addr)
	}
	return nil
}

// An Engine is one embedded gobgp server driven by desired state: the
// configuration (Configure) and the routes (SetRoutes) are pushed in full
// and the Engine changes only the difference. It is the only code that
// uses gobgp's types; the rest of the speaker sees Config, Route and
// Session.
//
// What needs a restart of gobgp (AS, router ID, listen port and
// addresses, families, multipath, global graceful restart) restarts it and
// re-pushes every peer and route at once; the policy, peers and routes
// change live, and a change to one peer touches no other session.
type Engine struct {
	log      logr.Logger
	srv      *server.BgpServer
	onChange func()
	cancel   context.CancelFunc

	mu     sync.Mutex
	global *api.Global // running; nil when BGP is stopped
	policy *Policy     // running user policy; nil: none
	peers  map[string]Peer
	routes map[netip.Prefix]Route
	// routesKnown is false until the first SetRoutes: neighbours are added
	// only then, so that a restarted speaker never opens a session (and
	// sends End-of-RIB, which makes a graceful-restart helper drop the
	// routes it kept) before it knows its routes.
	routesKnown bool
	last        Config
	// version counts changes of the advertised routes.
	version  uint64
	paths    map[netip.Prefix]installed
	restarts int
	stopped  bool

	errMu   sync.Mutex
	lastErr map[string]string // neighbour → why the session is not established
}

// importPolicy accepts the speaker's own routes; with the default action
// REJECT of the global import assignment it drops every received route.
var importPolicy = &api.Policy{Name: ReservedPolicyPrefix + "accept-local", Statements: []*api.Statement{{
	Name:       ReservedPolicyPrefix + "accept-local",
	Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
	Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
}}}

type installed struct {
	route Route
}

// NewEngine starts an embedded gobgp (without global configuration: it
// does nothing until Configure).
func NewEngine(o EngineOptions, log logr.Logger) (*Engine, error) {
	if err := ValidateGRPCAddress(o.GRPCAddress); err != nil {
		return nil, err
	}
	disableMPTCPListeners()
	e := &Engine{log: log, onChange: o.OnChange, peers: map[string]Peer{}, routes: map[netip.Prefix]Route{},
		paths: map[netip.Prefix]installed{}, lastErr: map[string]string{}}
	if e.onChange == nil {
		e.onChange = func() {}
	}
	opts := []server.ServerOption{server.LoggerOption(newLogBridge(log.WithName("gobgp"), e.peerEvent))}
	if o.GRPCAddress != "" {
		opts = append(opts, server.GrpcListenAddress(o.GRPCAddress))
	}
	e.srv = server.NewBgpServer(opts...)
	go e.srv.Serve()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	err := e.srv.WatchEvent(ctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, func(r *api.WatchEventResponse) {
		if p := r.GetPeer(); p != nil && p.Type == api.WatchEventResponse_PeerEvent_STATE {
			if p.Peer.GetState().GetSessionState() == api.PeerState_ESTABLISHED {
				e.setLastErr(p.Peer.GetState().GetNeighborAddress(), "")
			}
			e.onChange()
		}
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch gobgp peer events: %w", err)
	}
	return e, nil
}

func (e *Engine) peerEvent(ev peerEvent) {
	if ev.Up {
		e.setLastErr(ev.Neighbor, "")
	} else {
		e.setLastErr(ev.Neighbor, ev.Error)
	}
	e.onChange()
}

func (e *Engine) setLastErr(nbr, msg string) {
	if nbr == "" {
		return
	}
	if a, err := netip.ParseAddr(nbr); err == nil {
		nbr = a.String()
	}
	e.errMu.Lock()
	defer e.errMu.Unlock()
	if msg == "" {
		delete(e.lastErr, nbr)
		return
	}
	e.lastErr[nbr] = msg
}

func (e *Engine) getLastErr(nbr string) string {
	e.errMu.Lock()
	defer e.errMu.Unlock()
	return e.lastErr[nbr]
}

// Running returns the global configuration gobgp runs (nil: stopped).
func (e *Engine) Running() *api.Global {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.global == nil {
		return nil
	}
	return proto.Clone(e.global).(*api.Global)
}

// Restarts counts the restarts of gobgp caused by configuration changes.
func (e *Engine) Restarts() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.restarts
}

// needsRestart reports whether going from a to b needs gobgp to restart:
// gobgp cannot change its global configuration live.
func needsRestart(a, b *api.Global) bool {
	a, b = proto.Clone(a).(*api.Global), proto.Clone(b).(*api.Global)
	a.ApplyPolicy, b.ApplyPolicy = nil, nil
	return !proto.Equal(a, b)
}

// timersNeedReset reports whether a peer change alters the hold time or
// keepalive, which are negotiated when the session opens: gobgp would
// apply them only at the next session, so the Engine resets that session.
func timersNeedReset(a, b *api.Peer) bool {
	ta, tb := a.GetTimers().GetConfig(), b.GetTimers().GetConfig()
	return ta.GetHoldTime() != tb.GetHoldTime() || ta.GetKeepaliveInterval() != tb.GetKeepaliveInterval()
}

// Configure makes gobgp run c. Parts of c that are in error (GlobalErr,
// PolicyErr, peers that failed translation) leave what runs untouched.
func (e *Engine) Configure(ctx context.Context, c Config) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return nil
	}
	var errs []error
	switch {
	case c.Global == nil && c.GlobalErr != "":
		// Keep what runs; the caller reports the error.
	case c.Global == nil:
		if e.global != nil {
			e.log.Info("Stopping BGP", "reason", c.NotConfigured)
			e.stopLocked(ctx)
		}
		return nil
	case e.global == nil:
		if err := e.startLocked(ctx, c); err != nil {
			return err
		}
		return nil
	case needsRestart(e.global, c.Global):
		e.log.Info("Restarting BGP: a global setting changed that gobgp cannot change live",
			"as", c.Global.Asn, "routerID", c.Global.RouterId, "listenPort", c.Global.ListenPort)
		e.stopLocked(ctx)
		e.restarts++
		if err := e.startLocked(ctx, c); err != nil {
			return err
		}
		return nil
	}
	if e.global == nil {
		return nil
	}
	if c.PolicyErr == "" && !c.Policy.Equal(e.policy) {
		errs = append(errs, e.changePolicyLocked(ctx, c.Policy))
	}
	errs = append(errs, e.syncPeersLocked(ctx, c))
	return errors.Join(errs...)
}

// startLocked starts gobgp with c: global, policy, routes, then peers, so
// that the first UPDATE to every neighbour carries every route.
func (e *Engine) startLocked(ctx context.Context, c Config) error {
	if err := e.srv.StartBgp(ctx, &api.StartBgpRequest{Global: c.Global}); err != nil {
		return fmt.Errorf("start BGP (AS %d, router ID %s, port %d): %w", c.Global.Asn, c.Global.RouterId, c.Global.ListenPort, err)
	}
	e.global = proto.Clone(c.Global).(*api.Global)
	e.log.Info("BGP started", "as", c.Global.Asn, "routerID", c.Global.RouterId, "listenPort", c.Global.ListenPort)
	var errs []error
	e.policy = nil
	if c.PolicyErr == "" {
		if err := e.setPolicyLocked(ctx, c.Policy); err != nil {
			errs = append(errs, err)
		}
	} else if err := e.setPolicyLocked(ctx, nil); err != nil {
		errs = append(errs, err)
	}
	e.paths = map[netip.Prefix]installed{}
	errs = append(errs, e.syncPathsLocked(ctx))
	errs = append(errs, e.syncPeersLocked(ctx, c))
	return errors.Join(errs...)
}

func (e *Engine) stopLocked(ctx context.Context) {
	if err := e.srv.StopBgp(ctx, &api.StopBgpRequest{}); err != nil {
		e.log.Error(err, "Cannot stop BGP")
	}
	e.global, e.policy = nil, nil
	e.peers = map[string]Peer{}
	e.paths = map[netip.Prefix]installed{}
}

// changePolicyLocked replaces the running policy with p without resetting
// any session. gobgp keeps no Adj-RIB-Out: a soft reset out re-sends what
// the new policy accepts (new attributes included) but never withdraws
// what it now rejects. So the routes exported before and after are
// compared per neighbour, and those no longer exported to some neighbour
// are withdrawn under the old policy (which reaches exactly the neighbours
// that had them) and re-added under the new one.
func (e *Engine) changePolicyLocked(ctx context.Context, p *Policy) error {
	old := e.policy
	before, err := e.exportedLocked(ctx)
	if err != nil {
		return err
	}
	if err := e.setPolicyLocked(ctx, p); err != nil {
		return err
	}
	after, err := e.exportedLocked(ctx)
	if err != nil {
		return err
	}
	lost := map[netip.Prefix]bool{}
	for nbr, prefixes := range before {
		for pfx := range prefixes {
			if !after[nbr][pfx] {
				lost[pfx] = true
			}
		}
	}
	var errs []error
	if len(lost) > 0 {
		if err := e.setPolicyLocked(ctx, old); err != nil {
			return err
		}
		for pfx := range lost {
			if in, ok := e.paths[pfx]; ok {
				if err := e.deletePathLocked(ctx, in.route); err != nil {
					errs = append(errs, err)
					continue
				}
				delete(e.paths, pfx)
			}
		}
		if err := e.setPolicyLocked(ctx, p); err != nil {
			return errors.Join(append(errs, err)...)
		}
		errs = append(errs, e.syncPathsLocked(ctx))
	}
	if len(e.peers) > 0 {
		if err := e.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: "all", Soft: true, Direction: api.ResetPeerRequest_OUT}); err != nil {
			errs = append(errs, fmt.Errorf("re-advertise after the policy change: %w", err))
		}
	}
	e.log.Info("Export policy changed", "withdrawn", len(lost))
	return errors.Join(errs...)
}

// exportedLocked returns, per established neighbour, the prefixes gobgp
// exports to it under the running policy.
func (e *Engine) exportedLocked(ctx context.Context) (map[string]map[netip.Prefix]bool, error) {
	out := map[string]map[netip.Prefix]bool{}
	for addr := range e.peers {
		set := map[netip.Prefix]bool{}
		for _, fam := range []*api.Family{familyV4, familyV6} {
			err := e.srv.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_ADJ_OUT, Name: addr, Family: fam}, func(d *api.Destination) {
				if pfx, err := netip.ParsePrefix(d.Prefix); err == nil {
					set[pfx] = true
				}
			})
			if err != nil {
				return nil, fmt.Errorf("list routes exported to %s: %w", addr, err)
			}
		}
		out[addr] = set
	}
	return out, nil
}

// setPolicyLocked installs p (nil: none) and the fixed import policy that
// rejects every received route.
func (e *Engine) setPolicyLocked(ctx context.Context, p *Policy) error {
	global := "global"
	// Detach the export policies first: SetPolicies replaces the sets and
	// policies, and assignments must never name a policy that is gone.
	if err := e.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: global, Direction: api.PolicyDirection_EXPORT, DefaultAction: api.RouteAction_ACCEPT}}); err != nil {
		return fmt.Errorf("reset export policy: %w", err)
	}
	req := &api.SetPoliciesRequest{Policies: []*api.Policy{importPolicy}}
	export := &api.PolicyAssignment{Name: global, Direction: api.PolicyDirection_EXPORT, DefaultAction: api.RouteAction_ACCEPT}
	if p != nil {
		req.DefinedSets, req.Policies = p.DefinedSets, append(slices.Clone(p.Policies), importPolicy)
		export.DefaultAction = p.ExportDefault
		for _, n := range p.Export {
			export.Policies = append(export.Policies, &api.Policy{Name: n})
		}
	}
	if err := e.srv.SetPolicies(ctx, req); err != nil {
		return fmt.Errorf("set policies: %w", err)
	}
	if err := e.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: export}); err != nil {
		return fmt.Errorf("assign export policies: %w", err)
	}
	// The speaker is not a router: it keeps nothing its neighbours send
	// (routers reflect the service routes of the other nodes back). gobgp
	// applies the global import policy to local routes too: those pass.
	if err := e.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: global, Direction: api.PolicyDirection_IMPORT, DefaultAction: api.RouteAction_REJECT,
		Policies: []*api.Policy{{Name: importPolicy.Name}}}}); err != nil {
		return fmt.Errorf("assign import policy: %w", err)
	}
	e.policy = p
	return nil
}

func (e *Engine) syncPeersLocked(ctx context.Context, c Config) error {
	e.last = c
	if !e.routesKnown {
		return nil
	}
	var errs []error
	names := map[string]bool{}
	for name, r := range c.PeerResults {
		if !r.Accepted() && !r.Skipped && (r.Selected || r.Reason == ReasonInvalidSelector) {
			names[name] = true // failed translation: keep what runs
		}
	}
	for addr, p := range e.peers {
		if _, ok := c.Peers[addr]; ok || names[p.Name] {
			continue
		}
		if err := e.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil {
			errs = append(errs, fmt.Errorf("delete neighbour %s (BgpPeer %s): %w", addr, p.Name, err))
			continue
		}
		e.log.Info("Neighbour removed", "neighbor", addr, "bgpPeer", p.Name)
		delete(e.peers, addr)
		e.setLastErr(addr, "")
	}
	addrs := make([]string, 0, len(c.Peers))
	for a := range c.Peers {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, addr := range addrs {
		want := c.Peers[addr]
		have, ok := e.peers[addr]
		switch {
		case !ok:
			if err := e.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: want.Spec}); err != nil {
				errs = append(errs, fmt.Errorf("add neighbour %s (BgpPeer %s): %w", addr, want.Name, err))
				continue
			}
			e.log.Info("Neighbour added", "neighbor", addr, "bgpPeer", want.Name)
		case proto.Equal(have.Spec, want.Spec):
			if have.Name != want.Name {
				e.peers[addr] = want
			}
			continue
		case timersNeedReset(have.Spec, want.Spec):
			// Hold time and keepalive are negotiated in OPEN: reset this
			// session (and only this one) so that they apply now.
			if err := e.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil {
				errs = append(errs, fmt.Errorf("reset neighbour %s (BgpPeer %s): %w", addr, want.Name, err))
				continue
			}
			delete(e.peers, addr)
			if err := e.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: want.Spec}); err != nil {
				errs = append(errs, fmt.Errorf("add neighbour %s (BgpPeer %s): %w", addr, want.Name, err))
				continue
			}
			e.log.Info("Neighbour timers changed: session reset", "neighbor", addr, "bgpPeer", want.Name)
		default:
			if _, err := e.srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: want.Spec}); err != nil {
				errs = append(errs, fmt.Errorf("update neighbour %s (BgpPeer %s): %w", addr, want.Name, err))
				continue
			}
			e.log.Info("Neighbour updated", "neighbor", addr, "bgpPeer", want.Name)
		}
		e.peers[addr] = Peer{Name: want.Name, Spec: proto.Clone(want.Spec).(*api.Peer)}
	}
	return errors.Join(errs...)
}

// SetRoutes makes gobgp originate exactly routes (withdrawing the others).
// Without a running BGP configuration they are kept for when it starts.
func (e *Engine) SetRoutes(ctx context.Context, routes map[netip.Prefix]Route) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return nil
	}
	e.routes = routes
	if e.global == nil {
		e.routesKnown = true
		return nil
	}
	err := e.syncPathsLocked(ctx)
	if !e.routesKnown {
		e.routesKnown = true
		err = errors.Join(err, e.syncPeersLocked(ctx, e.last))
	}
	return err
}

func (e *Engine) syncPathsLocked(ctx context.Context) error {
	var errs []error
	if len(e.routes) == 0 && len(e.paths) > 0 {
		// Everything goes: one call withdraws every local path.
		if err := e.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL}); err != nil {
			return fmt.Errorf("withdraw every route: %w", err)
		}
		e.paths = map[netip.Prefix]installed{}
		e.version++
		return nil
	}
	for p, in := range e.paths {
		if _, ok := e.routes[p]; ok {
			continue // kept, or replaced below: a new path from us implicitly withdraws the old one
		}
		if err := e.deletePathLocked(ctx, in.route); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(e.paths, p)
		e.version++
	}
	for p, r := range e.routes {
		if in, ok := e.paths[p]; ok && in.route == r {
			continue
		}
		path, err := r.apiPath()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := e.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path}); err != nil {
			errs = append(errs, fmt.Errorf("advertise %s: %w", p, err))
			continue
		}
		e.paths[p] = installed{route: r}
		e.version++
	}
	return errors.Join(errs...)
}

// deletePathLocked withdraws one route, naming the path (gobgp's lookup by
// UUID walks every path: O(routes) per call).
func (e *Engine) deletePathLocked(ctx context.Context, r Route) error {
	path, err := r.apiPath()
	if err != nil {
		return err
	}
	if err := e.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: path.Family, Path: path}); err != nil {
		return fmt.Errorf("withdraw %s: %w", r.Prefix, err)
	}
	return nil
}

// Version changes whenever the routes in gobgp's RIB change.
func (e *Engine) Version() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.version
}

// AdvertisedCount returns how many routes this node originates (O(1)).
func (e *Engine) AdvertisedCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.paths)
}

// Advertised returns the routes in gobgp's RIB.
func (e *Engine) Advertised() map[netip.Prefix]Route {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[netip.Prefix]Route, len(e.paths))
	for p, in := range e.paths {
		out[p] = in.route
	}
	return out
}

// Stop ends BGP for good (SIGTERM). Without graceful restart every session
// is closed with a CEASE notification, so routers withdraw this node's
// routes at once. With graceful (planned restarts), sessions whose
// neighbour has graceful restart configured are left for the process exit
// to close without a notification: such a router keeps the routes as
// stale until the restarted speaker re-advertises them or its restart time
// runs out; the other sessions are closed as above.
func (e *Engine) Stop(ctx context.Context, graceful bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	e.stopped = true
	defer e.cancel()
	if e.global == nil {
		return
	}
	if graceful {
		kept := 0
		for addr, p := range e.peers {
			if gr := p.Spec.GetGracefulRestart(); gr != nil && gr.Enabled {
				kept++
				continue
			}
			if err := e.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil {
				e.log.Error(err, "Cannot close session", "neighbor", addr)
			}
		}
		if kept > 0 {
			e.log.Info("Graceful restart: leaving sessions for the process exit to close, routers keep the routes as stale", "sessions", kept)
			return
		}
	}
	e.stopLocked(ctx)
}

// GracefulRestartConfigured reports whether any running neighbour has
// graceful restart enabled.
func (e *Engine) GracefulRestartConfigured() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.peers {
		if gr := p.Spec.GetGracefulRestart(); gr != nil && gr.Enabled {
			return true
		}
	}
	return false
}

// A Session is the state of one neighbour as gobgp sees it.
type Session struct {
	// Name is the BgpPeer's name, Neighbor its address.
	Name, Neighbor string
	// State is IDLE, CONNECT, ACTIVE, OPENSENT, OPENCONFIRM or ESTABLISHED;
	// AdminState UP, DOWN or PFX_CT.
	State, AdminState string
	Description       string
	LocalAS, PeerAS   uint32
	PeerType          uint32
	// RouterID is the neighbour's router ID (when established).
	RouterID string
	Flops    uint32
	// Uptime is when the session was established, Downtime when it last
	// went down (zero: never).
	Uptime, Downtime time.Time
	// Timers in seconds: configured and negotiated.
	ConnectRetry, HoldTime, KeepaliveInterval, MinimumAdvertisementInterval, NegotiatedHoldTime uint64
	// Received, Accepted and Advertised count routes over every family.
	Received, Accepted, Advertised uint64
	// LastError says why the session is not established, when known.
	LastError string
	// Password is true when a TCP-MD5 password is configured.
	Password bool
}

// Established reports whether the session is up.
func (s Session) Established() bool { return s.State == "ESTABLISHED" }

// Sessions returns every neighbour's state, sorted by address. advertised
// counts the routes sent to each neighbour (an O(routes) walk per
// neighbour inside gobgp: ask for it only when something changed).
func (e *Engine) Sessions(ctx context.Context, advertised bool) ([]Session, error) {
	e.mu.Lock()
	names := make(map[string]string, len(e.peers))
	for a, p := range e.peers {
		names[a] = p.Name
	}
	running := e.global != nil && !e.stopped
	e.mu.Unlock()
	if !running {
		return nil, nil
	}
	var out []Session
	err := e.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: advertised}, func(p *api.Peer) {
		out = append(out, e.session(p, names))
	})
	if err != nil {
		return nil, fmt.Errorf("list BGP neighbours: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Neighbor < out[j].Neighbor })
	return out, nil
}

func (e *Engine) session(p *api.Peer, names map[string]string) Session {
	st, conf, tst, tc := p.GetState(), p.GetConf(), p.GetTimers().GetState(), p.GetTimers().GetConfig()
	addr := conf.GetNeighborAddress()
	if a, err := netip.ParseAddr(addr); err == nil {
		addr = a.String()
	}
	s := Session{
		Name: names[addr], Neighbor: addr,
		State:       st.GetSessionState().String(),
		AdminState:  st.GetAdminState().String(),
		Description: conf.GetDescription(), LocalAS: conf.GetLocalAsn(), PeerAS: conf.GetPeerAsn(),
		PeerType: uint32(st.GetType()), RouterID: st.GetRouterId(), Flops: st.GetFlops(),
		ConnectRetry: tc.GetConnectRetry(), HoldTime: tc.GetHoldTime(), KeepaliveInterval: tc.GetKeepaliveInterval(),
		MinimumAdvertisementInterval: tc.GetMinimumAdvertisementInterval(), NegotiatedHoldTime: tst.GetNegotiatedHoldTime(),
		Password: conf.GetAuthPassword() != "",
	}
	if s.LocalAS == 0 {
		s.LocalAS = st.GetLocalAsn()
	}
	if t := tst.GetUptime(); t != nil && t.GetSeconds() > 0 {
		s.Uptime = t.AsTime()
	}
	if t := tst.GetDowntime(); t != nil && t.GetSeconds() > 0 {
		s.Downtime = t.AsTime()
	}
	for _, af := range p.GetAfiSafis() {
		s.Received += af.GetState().GetReceived()
		s.Accepted += af.GetState().GetAccepted()
		s.Advertised += af.GetState().GetAdvertised()
	}
	if !s.Established() {
		s.LastError = e.getLastErr(addr)
		if s.LastError != "" && s.Password && isTimeout(s.LastError) {
			s.LastError += " (a TCP-MD5 password is set: a password that differs from the neighbour's, or a neighbour without one, makes it drop the connection silently)"
		}
	} else {
		s.Uptime = s.Uptime.Truncate(time.Second)
	}
	return s
}

func isTimeout(msg string) bool {
	return strings.Contains(msg, "timeout") || strings.Contains(msg, "timed out")
}
