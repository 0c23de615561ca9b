package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/go-logr/logr"
	api "github.com/osrg/gobgp/v3/api"
)

// BenchmarkEngineAdvertise measures the Engine alone: N routes handed to
// SetRoutes until a gobgp router on loopback has them all, then all
// withdrawn (docs/performance.md, section BGP):
//
//	go test -run '^$' -bench Engine -benchtime 1x ./speaker/bgp/
func BenchmarkEngineAdvertise(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ctx := context.Background()
			r := newTestRouter(b, routerAS, "10.0.0.1")
			r.addNeighbor("127.0.0.2", speakerAS, "")
			e, err := NewEngine(EngineOptions{}, logr.Discard())
			if err != nil {
				b.Fatal(err)
			}
			defer e.Stop(ctx, false)
			if err := e.SetRoutes(ctx, nil); err != nil {
				b.Fatal(err)
			}
			if err := e.Configure(ctx, config(global(speakerAS, "10.0.0.2"), r.peerTo("up", "127.0.0.2", 0))); err != nil {
				b.Fatal(err)
			}
			waitCount(b, r, 0, func() bool { return r.established("127.0.0.2") })
			rs := map[netip.Prefix]Route{}
			a := netip.MustParseAddr("198.18.128.1")
			for range n {
				rs[netip.PrefixFrom(a, 32)] = Route{Prefix: netip.PrefixFrom(a, 32), NextHop: netip.MustParseAddr("198.51.100.11")}
				a = a.Next()
			}
			var adv, wd time.Duration
			for b.Loop() {
				start := time.Now()
				if err := e.SetRoutes(ctx, rs); err != nil {
					b.Fatal(err)
				}
				waitCount(b, r, n, nil)
				adv += time.Since(start)
				start = time.Now()
				if err := e.SetRoutes(ctx, map[netip.Prefix]Route{}); err != nil {
					b.Fatal(err)
				}
				waitCount(b, r, 0, nil)
				wd += time.Since(start)
			}
			b.ReportMetric(adv.Seconds()/float64(b.N), "advertise-s")
			b.ReportMetric(wd.Seconds()/float64(b.N), "withdraw-s")
		})
	}
}

// waitCount polls the router's IPv4 table until it holds n destinations
// (and ready() when given), for at most a minute.
func waitCount(b *testing.B, r *testRouter, n int, ready func() bool) {
	deadline := time.Now().Add(time.Minute)
	for {
		tab, err := r.srv.GetTable(context.Background(), &api.GetTableRequest{TableType: api.TableType_GLOBAL, Family: familyV4})
		if err == nil && tab.NumDestination == uint64(n) && (ready == nil || ready()) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("router holds %v destinations, want %d (%v)", tab.GetNumDestination(), n, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
