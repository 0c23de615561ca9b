//go:build linux

package netx_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openelb/openelb-operator/speaker/internal/netx/netxtest"

	"github.com/openelb/openelb-operator/speaker/internal/netx"
)

// TestKernelInNamespace reads links, addresses and routes through netlink
// in a network namespace it creates and deletes (root; fails under CI=true
// when it cannot run).
func TestKernelInNamespace(t *testing.T) {
	netxtest.Require(t, true, "ip")
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	ns := "nxt" + hex.EncodeToString(b)
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	sh("link", "set", "lo", "up")
	sh("link", "add", "eth0", "type", "veth", "peer", "name", "eth9")
	sh("link", "set", "eth0", "address", "02:00:00:00:01:11")
	sh("addr", "add", "198.51.100.11/24", "dev", "eth0")
	sh("addr", "add", "2001:db8::11/64", "dev", "eth0", "nodad")
	sh("link", "set", "eth0", "up")
	sh("link", "set", "eth9", "up")
	sh("route", "add", "default", "via", "198.51.100.1")
	sh("link", "add", "eth1", "type", "veth", "peer", "name", "eth8")
	sh("link", "set", "eth1", "up") // up, but its peer is down: no carrier
	sh("addr", "add", "203.0.113.20/32", "dev", "lo")

	var (
		snap    netx.Snapshot
		changes = make(chan struct{}, 16)
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := netxtest.InNamespace(ns, func() error {
		var err error
		deadline := time.Now().Add(5 * time.Second)
		for { // veth carrier comes up asynchronously
			snap, err = netx.Kernel{}.Snapshot()
			if l, ok := snap.LinkByName("eth0"); err != nil || (ok && l.Up) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			return err
		}
		return netx.Kernel{}.Watch(ctx, func() {
			select {
			case changes <- struct{}{}:
			default:
			}
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	eth0, ok := snap.LinkByName("eth0")
	if !ok || !eth0.Up || eth0.Loopback || eth0.MAC.String() != "02:00:00:00:01:11" ||
		!slices.Contains(eth0.Prefixes, netip.MustParsePrefix("198.51.100.11/24")) ||
		!slices.Contains(eth0.Prefixes, netip.MustParsePrefix("2001:db8::11/64")) {
		t.Fatalf("eth0 = %+v", eth0)
	}
	if d, ok := snap.LinkByName("eth1"); !ok || d.Up {
		t.Fatalf("eth1 = %+v (want present and not up: no carrier)", d)
	}
	if lo, ok := snap.LinkByName("lo"); !ok || !lo.Loopback {
		t.Fatalf("lo = %+v", lo)
	}
	if got := snap.RouteLinks(netip.MustParseAddr("203.0.113.20")); !slices.Equal(got, []int{eth0.Index}) {
		t.Fatalf("route to an address on lo: links %v, want eth0 (main table only)", got)
	}
	if got := snap.RouteLinks(netip.MustParseAddr("2001:db8::20")); !slices.Equal(got, []int{eth0.Index}) {
		t.Fatalf("IPv6 on-link route: links %v", got)
	}
	for len(changes) > 0 {
		<-changes
	}
	sh("link", "set", "eth8", "up")
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("no change notified after a link got its carrier")
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if !strings.Contains(string(out), ns) {
		t.Fatal("namespace vanished during the test")
	}
}
