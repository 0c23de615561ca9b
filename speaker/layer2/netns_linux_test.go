//go:build linux

package layer2

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openelb/openelb-operator/speaker/internal/netx/netxtest"

	"github.com/go-logr/logr/testr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// These tests run the responder on real sockets between two network
// namespaces that they create and delete (unique prefix per run). They need
// root, arping and ndisc6; under CI=true they fail instead of skipping when
// they cannot run.

func requireNetns(t *testing.T) {
	t.Helper()
	netxtest.Require(t, true, "ip", "arping", "ndisc6")
}

type pair struct {
	t      *testing.T
	prefix string
	a, b   string // namespace names: a announces, b is the client
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (p *pair) in(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// newPair creates namespaces <prefix>-a and <prefix>-b joined by a veth:
// a: eth0 02:00:00:00:01:11 198.51.100.11/24 2001:db8::11/64
// b: eth0 02:00:00:00:00:64 198.51.100.100/24 2001:db8::100/64, with a
// route to 203.0.113.0/24 on eth0.
func newPair(t *testing.T) *pair {
	requireNetns(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	p := &pair{t: t, prefix: "l2t" + hex.EncodeToString(b)}
	p.a, p.b = p.prefix+"-a", p.prefix+"-b"
	t.Cleanup(func() {
		for _, ns := range []string{p.a, p.b} {
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
		out, _ := exec.Command("ip", "netns", "list").Output()
		if strings.Contains(string(out), p.prefix) {
			t.Errorf("namespaces left behind: %s", out)
		}
	})
	for _, ns := range []string{p.a, p.b} {
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		for _, kv := range []string{"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0"} {
			if _, err := p.in(ns, "sysctl", "-qw", kv); err != nil {
				t.Fatal(err)
			}
		}
	}
	run(t, "ip", "-n", p.a, "link", "add", "eth0", "address", "02:00:00:00:01:11", "type", "veth", "peer", "name", "eth0", "netns", p.b)
	run(t, "ip", "-n", p.b, "link", "set", "eth0", "address", "02:00:00:00:00:64")
	for _, x := range []struct{ ns, v4, v6 string }{{p.a, "198.51.100.11/24", "2001:db8::11/64"}, {p.b, "198.51.100.100/24", "2001:db8::100/64"}} {
		run(t, "ip", "-n", x.ns, "addr", "add", x.v4, "dev", "eth0")
		run(t, "ip", "-n", x.ns, "addr", "add", x.v6, "dev", "eth0", "nodad")
		run(t, "ip", "-n", x.ns, "link", "set", "eth0", "up")
	}
	run(t, "ip", "-n", p.b, "route", "add", "203.0.113.0/24", "dev", "eth0")
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, _ := p.in(p.a, "ip", "-6", "addr", "show", "dev", "eth0", "scope", "link")
		b, _ := p.in(p.b, "ip", "link", "show", "eth0")
		if strings.Contains(a, "fe80::") && !strings.Contains(a, "tentative") && strings.Contains(b, "state UP") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("veth not ready:\n%s\n%s", a, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// do runs f on a thread inside namespace ns (sockets it opens stay there).
func (p *pair) do(ns string, f func() error) error {
	return netxtest.InNamespace(ns, f)
}

func (p *pair) neighbor(ns string, ip netip.Addr) net.HardwareAddr {
	h, err := netns.GetFromName(ns)
	if err != nil {
		p.t.Fatal(err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		p.t.Fatal(err)
	}
	defer nl.Close()
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	list, err := nl.NeighList(0, fam)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, n := range list {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip && n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0 {
			return n.HardwareAddr
		}
	}
	return nil
}

var (
	arpingReplyRe = regexp.MustCompile(`reply from \S+ \[([0-9A-Fa-f:]{17})\]`)
	ndiscReplyRe  = regexp.MustCompile(`Target link-layer address: ([0-9A-Fa-f:]{17})`)
)

func TestNetnsARPAndNDP(t *testing.T) {
	p := newPair(t)
	annMAC := "02:00:00:00:01:11"
	var a *Announcer
	if err := p.do(p.a, func() error {
		a = NewAnnouncer(AnnouncerConfig{Dialer: Kernel{}, Burst: []time.Duration{0, 200 * time.Millisecond}}, testr.New(t))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	defer func() { cancel(); <-done; a.Close() }()

	// The client holds a stale entry with a wrong MAC: the gratuitous ARP
	// must move it.
	run(t, "ip", "-n", p.b, "neigh", "replace", "203.0.113.20", "lladdr", "02:00:00:00:09:99", "dev", "eth0", "nud", "stale")
	run(t, "ip", "-n", p.b, "-6", "neigh", "replace", "2001:db8::20", "lladdr", "02:00:00:00:09:99", "dev", "eth0", "nud", "stale")
	if err := p.do(p.a, func() error {
		return a.Set(map[netip.Addr]string{vip4: "eth0", vip6: "eth0"})
	}); err != nil {
		t.Fatal(err)
	}
	for _, ip := range []netip.Addr{vip4, vip6} {
		deadline := time.Now().Add(5 * time.Second)
		for p.neighbor(p.b, ip).String() != annMAC {
			if time.Now().After(deadline) {
				t.Fatalf("client's entry for %s = %v after the gratuitous announcements, want %s", ip, p.neighbor(p.b, ip), annMAC)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// arping: three requests, three replies, all from the announcer.
	out, _ := p.in(p.b, "arping", "-c", "3", "-w", "5", "-I", "eth0", "203.0.113.20")
	replies := arpingReplyRe.FindAllStringSubmatch(out, -1)
	if len(replies) != 3 {
		t.Fatalf("arping: %d replies, want 3:\n%s", len(replies), out)
	}
	for _, r := range replies {
		if !strings.EqualFold(r[1], annMAC) {
			t.Fatalf("arping reply from %s, want %s", r[1], annMAC)
		}
	}
	// An address not announced gets no answer.
	if out, _ := p.in(p.b, "arping", "-c", "1", "-w", "1", "-I", "eth0", "203.0.113.21"); len(arpingReplyRe.FindAllString(out, -1)) != 0 {
		t.Fatalf("an unannounced address was answered:\n%s", out)
	}

	// ndisc6 resolves the IPv6 address (the NA is sourced from the
	// address itself when possible, else link-local: ndisc6 needs the
	// former only when it checks the source, which it does not with -m).
	out, _ = p.in(p.b, "ndisc6", "-m", "-r", "2", "-w", "1000", "2001:db8::20", "eth0")
	if m := ndiscReplyRe.FindAllStringSubmatch(out, -1); len(m) == 0 || !strings.EqualFold(m[0][1], annMAC) {
		t.Fatalf("ndisc6: %s", out)
	}

	// DAD: the client tries to configure the announced address and must
	// see it taken.
	run(t, "ip", "netns", "exec", p.b, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=1")
	run(t, "ip", "-n", p.b, "addr", "add", "2001:db8::20/64", "dev", "eth0")
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := p.in(p.b, "ip", "-6", "addr", "show", "dev", "eth0")
		if strings.Contains(out, "dadfailed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client's DAD probe for the announced address was not answered:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	run(t, "ip", "-n", p.b, "addr", "del", "2001:db8::20/64", "dev", "eth0")

	// Released: no answer any more.
	if err := p.do(p.a, func() error { return a.Set(nil) }); err != nil {
		t.Fatal(err)
	}
	if out, _ := p.in(p.b, "arping", "-c", "2", "-w", "2", "-I", "eth0", "203.0.113.20"); len(arpingReplyRe.FindAllString(out, -1)) != 0 {
		t.Fatalf("a released address is still answered:\n%s", out)
	}
	if out, _ := p.in(p.b, "ndisc6", "-m", "-r", "1", "-w", "500", "2001:db8::20", "eth0"); len(ndiscReplyRe.FindAllString(out, -1)) != 0 {
		t.Fatalf("a released IPv6 address is still answered:\n%s", out)
	}
}
