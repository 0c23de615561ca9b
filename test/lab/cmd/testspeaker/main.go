// Command testspeaker is a minimal BGP speaker on embedded gobgp v3.37.0
// for the lab's self-test (lab-recipes §4.1): it dials the router (never
// listens), announces prefixes with this node as next hop and withdraws
// them with a CEASE on SIGTERM. It stands in for the product's speaker
// role, which the lab's own tests must not depend on.
//
// Usage:
//
//	testspeaker -asn 64511 -router-id 198.51.100.11 -peer-as 64500 \
//	  -peer 198.51.100.1 -nexthop 198.51.100.11 -prefix 203.0.113.10/32 \
//	  [-peer6 2001:db8::1 -nexthop6 2001:db8::11 -prefix 2001:db8:ffff::10/128] \
//	  [-hold 3 -keepalive 1]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	stdlog "log"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"
)

type prefixes []netip.Prefix

func (p *prefixes) String() string { return fmt.Sprint(*p) }
func (p *prefixes) Set(s string) error {
	pf, err := netip.ParsePrefix(s)
	if err != nil {
		return err
	}
	*p = append(*p, pf)
	return nil
}

func main() {
	var (
		asn, peerAS             uint
		routerID, peer, nexthop string
		peer6, nexthop6         string
		hold, keepalive         uint64
		announce                prefixes
	)
	flag.UintVar(&asn, "asn", 64511, "local AS")
	flag.StringVar(&routerID, "router-id", "", "router id (required)")
	flag.UintVar(&peerAS, "peer-as", 64500, "the router's AS")
	flag.StringVar(&peer, "peer", "", "IPv4 address of the router")
	flag.StringVar(&nexthop, "nexthop", "", "IPv4 next hop of announced IPv4 prefixes")
	flag.StringVar(&peer6, "peer6", "", "IPv6 address of the router")
	flag.StringVar(&nexthop6, "nexthop6", "", "IPv6 next hop of announced IPv6 prefixes")
	flag.Uint64Var(&hold, "hold", 3, "hold time, seconds")
	flag.Uint64Var(&keepalive, "keepalive", 1, "keepalive interval, seconds")
	flag.Var(&announce, "prefix", "prefix to announce (repeatable)")
	flag.Parse()
	if err := run(uint32(asn), uint32(peerAS), routerID, peer, nexthop, peer6, nexthop6, hold, keepalive, announce); err != nil {
		stdlog.Fatalf("testspeaker: %v", err)
	}
}

func run(asn, peerAS uint32, routerID, peer, nexthop, peer6, nexthop6 string, hold, keepalive uint64, announce prefixes) error {
	if routerID == "" || (peer == "" && peer6 == "") {
		return errors.New("-router-id and -peer or -peer6 are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	s := server.NewBgpServer(server.LoggerOption(&logger{level: log.InfoLevel}))
	go s.Serve()
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: asn, RouterId: routerID, ListenPort: -1}}); err != nil {
		return fmt.Errorf("start bgp: %w", err)
	}
	if err := s.WatchEvent(ctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, func(r *api.WatchEventResponse) {
		if p := r.GetPeer(); p != nil && p.Type == api.WatchEventResponse_PeerEvent_STATE {
			stdlog.Printf("peer %s state %s", p.Peer.State.NeighborAddress, p.Peer.State.SessionState)
		}
	}); err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	v4 := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	v6 := &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	for _, p := range []struct {
		addr string
		fam  *api.Family
	}{{peer, v4}, {peer6, v6}} {
		if p.addr == "" {
			continue
		}
		if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
			Conf:     &api.PeerConf{NeighborAddress: p.addr, PeerAsn: peerAS},
			Timers:   &api.Timers{Config: &api.TimersConfig{HoldTime: hold, KeepaliveInterval: keepalive, ConnectRetry: 1}},
			AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: p.fam, Enabled: true}}},
		}}); err != nil {
			return fmt.Errorf("add peer %s: %w", p.addr, err)
		}
	}
	origin, _ := anypb.New(&api.OriginAttribute{Origin: 0})
	for _, pf := range announce {
		nlri, _ := anypb.New(&api.IPAddressPrefix{Prefix: pf.Masked().Addr().String(), PrefixLen: uint32(pf.Bits())})
		path := &api.Path{Nlri: nlri}
		if pf.Addr().Is4() {
			if nexthop == "" {
				return fmt.Errorf("%s needs -nexthop", pf)
			}
			nh, _ := anypb.New(&api.NextHopAttribute{NextHop: nexthop})
			path.Family, path.Pattrs = v4, []*anypb.Any{origin, nh}
		} else {
			if nexthop6 == "" {
				return fmt.Errorf("%s needs -nexthop6", pf)
			}
			mp, _ := anypb.New(&api.MpReachNLRIAttribute{Family: v6, NextHops: []string{nexthop6}, Nlris: []*anypb.Any{nlri}})
			path.Family, path.Pattrs = v6, []*anypb.Any{origin, mp}
		}
		if _, err := s.AddPath(ctx, &api.AddPathRequest{Path: path}); err != nil {
			return fmt.Errorf("announce %s: %w", pf, err)
		}
	}
	stdlog.Printf("announcing %v as AS%d", announce, asn)
	<-ctx.Done()
	stdlog.Printf("stopping (CEASE to peers)")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.StopBgp(sctx, &api.StopBgpRequest{})
}

// logger bridges gobgp's logger to the standard logger on stderr.
type logger struct{ level log.LogLevel }

func (l *logger) out(lv log.LogLevel, tag, msg string, f log.Fields) {
	if lv > l.level {
		return
	}
	var kv []string
	for k, v := range f {
		kv = append(kv, fmt.Sprintf("%s=%v", k, v))
	}
	stdlog.Printf("%s %s %s", tag, msg, strings.Join(kv, " "))
}

func (l *logger) Panic(msg string, f log.Fields) { l.out(log.PanicLevel, "PANIC", msg, f); panic(msg) }
func (l *logger) Fatal(msg string, f log.Fields) { l.out(log.FatalLevel, "FATAL", msg, f); os.Exit(1) }
func (l *logger) Error(msg string, f log.Fields) { l.out(log.ErrorLevel, "ERROR", msg, f) }
func (l *logger) Warn(msg string, f log.Fields)  { l.out(log.WarnLevel, "WARN", msg, f) }
func (l *logger) Info(msg string, f log.Fields)  { l.out(log.InfoLevel, "INFO", msg, f) }
func (l *logger) Debug(msg string, f log.Fields) { l.out(log.DebugLevel, "DEBUG", msg, f) }
func (l *logger) SetLevel(lv log.LogLevel)       { l.level = lv }
func (l *logger) GetLevel() log.LogLevel         { return l.level }
