//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openelb/openelb-operator/test/lab"
)

// BenchmarkVIPFailover is `make bench-vip` (figures in docs/performance.md,
// section VIP): the failover of a vip address from its master, at the
// default 1 s advertisement interval and at 100 ms, for a graceful failure
// (the master's keepalived sidecar is stopped: SIGTERM, keepalived sends
// priority-0 advertisements) and a hard one (the master's cable is pulled).
// Each run measures the time from the event until another node holds the
// address ("node") and until the client's neighbour entry points at that
// node ("client"); the master is then restored and takes the address back
// before the next run. Run it with -benchtime=20x. It reports
// distributions and never asserts timings.
func BenchmarkVIPFailover(b *testing.B) {
	v := newVIPLab(b, time.Second, true)
	if err := v.l.Kube.Create(b.Context(), vipEip("eip-vip", vipPool, "eth0")); err != nil {
		b.Fatal(err)
	}
	ip := v.createVIPService(lbService("vip-svc", "eip-vip"))
	g := v.waitPlanned(ip)[ip]
	master := g.Members[0].Node
	for _, advert := range []time.Duration{time.Second, 100 * time.Millisecond} {
		v.t = b // the sub-benchmarks' contexts end with them
		if advert != v.advert {
			v.advert = advert
			for _, n := range v.l.Nodes {
				n.Speaker.Terminate(5 * time.Second)
				v.startSpeaker(n.Name, true)
			}
		}
		v.waitLoaded()
		kinds := []struct {
			name           string
			event, restore func() error
		}{
			{"graceful", func() error { return v.sidecars[master].Signal(syscall.SIGTERM) }, func() error {
				ctx, cancel := context.WithTimeout(b.Context(), 10*time.Second)
				defer cancel()
				if err := v.sidecars[master].Wait(ctx); err != nil {
					return fmt.Errorf("%s sidecar after SIGTERM: %w", master, err)
				}
				v.startSidecar(master)
				return nil
			}},
			{"hard", func() error { return v.l.LinkDown(master) }, func() error { return v.l.LinkUp(master) }},
		}
		for _, k := range kinds {
			b.Run(fmt.Sprintf("%s/%s", advert, k.name), func(b *testing.B) {
				v.t = b
				var node, client []time.Duration
				for range b.N {
					v.settle(ip, master)
					v.waitReaches(ip, master)
					dn, dc, to := v.failover(ip, master, k.event)
					node, client = append(node, dn), append(client, dc)
					if err := k.restore(); err != nil {
						b.Fatal(err)
					}
					_ = to
				}
				p50, p90, mx := durStats(node)
				c50, c90, cmx := durStats(client)
				b.ReportMetric(float64(p50.Microseconds())/1000, "node-p50-ms")
				b.ReportMetric(float64(p90.Microseconds())/1000, "node-p90-ms")
				b.ReportMetric(float64(mx.Microseconds())/1000, "node-max-ms")
				b.ReportMetric(float64(c50.Microseconds())/1000, "client-p50-ms")
				b.ReportMetric(float64(c90.Microseconds())/1000, "client-p90-ms")
				b.ReportMetric(float64(cmx.Microseconds())/1000, "client-max-ms")
				b.ReportMetric(0, "ns/op")
				b.Logf("%s %s at %v, %d runs; node (ms): %s; client (ms): %s", k.name, master, advert, len(node), msOf(node), msOf(client))
			})
		}
	}
}

// failover runs event and returns the time until another node holds ip
// and until the client's neighbour entry holds that node's MAC.
func (v *vipLab) failover(ip netip.Addr, from string, event func() error) (node, client time.Duration, to string) {
	v.t.Helper()
	ctx := v.t.Context()
	start := time.Now()
	if err := event(); err != nil {
		v.t.Fatal(err)
	}
	err := lab.Poll(ctx, 15*time.Second, 2*time.Millisecond, "takeover of "+ip.String(), func(context.Context) (bool, error) {
		for _, n := range v.holders(ip) {
			if n != from {
				to = n
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		v.t.Fatal(err)
	}
	node = time.Since(start)
	err = lab.Poll(ctx, 15*time.Second, 2*time.Millisecond, "client follows "+ip.String(), func(context.Context) (bool, error) {
		// The first backup to time out may hand over to a higher one a
		// moment later: any backup's MAC counts.
		mac := v.clientMAC(ip)
		for _, n := range v.l.Nodes {
			if n.Name != from && bytes.Equal(mac, v.macOfNode(n.Name, "eth0")) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		v.t.Fatal(err)
	}
	return node, time.Since(start), to
}

// durStats returns the median, the 90th percentile (nearest rank) and the
// maximum.
func durStats(ds []time.Duration) (p50, p90, mx time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return at(0.5), at(0.9), s[len(s)-1]
}

func msOf(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64)
	}
	return strings.Join(parts, " ")
}
