//go:build linux

package vip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openelb/openelb-operator/speaker/internal/netx/netxtest"

	"github.com/go-logr/logr/testr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// These tests run real keepalived processes under Supervisors in network
// namespaces that they create and delete (unique prefix per run): two
// nodes on a bridge. They need root, ip and keepalived; under CI=true they
// fail instead of skipping when they cannot run.

func requireNetns(t *testing.T) {
	t.Helper()
	netxtest.Require(t, true, "ip", "keepalived")
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// vnode is one node namespace with eth0 198.51.100.1N/24 on the bridge.
type vnode struct {
	name string // namespace
	ip   netip.Addr
	nl   *netlink.Handle
	dir  string
}

// twoNodes builds <p>-lan (bridge) and <p>-n1, <p>-n2, deleted at cleanup
// with every process in them.
func twoNodes(t *testing.T) []*vnode {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	p := "vt" + hex.EncodeToString(b)
	lan := p + "-lan"
	var names []string
	t.Cleanup(func() {
		for _, ns := range append(names, lan) {
			if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
				for _, f := range strings.Fields(string(out)) {
					if pid, err := strconv.Atoi(f); err == nil {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	sh(t, "ip", "netns", "add", lan)
	sh(t, "ip", "-n", lan, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
	sh(t, "ip", "-n", lan, "link", "set", "br0", "up")
	var nodes []*vnode
	for i := 1; i <= 2; i++ {
		ns := fmt.Sprintf("%s-n%d", p, i)
		names = append(names, ns)
		sh(t, "ip", "netns", "add", ns)
		sh(t, "ip", "-n", lan, "link", "add", fmt.Sprintf("n%d", i), "type", "veth", "peer", "name", "eth0", "netns", ns)
		sh(t, "ip", "-n", lan, "link", "set", fmt.Sprintf("n%d", i), "master", "br0", "up")
		ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})
		sh(t, "ip", "-n", ns, "addr", "add", ip.String()+"/24", "dev", "eth0")
		sh(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
		h, err := netns.GetFromName(ns)
		if err != nil {
			t.Fatal(err)
		}
		nl, err := netlink.NewHandleAt(h)
		h.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nl.Close)
		nodes = append(nodes, &vnode{name: ns, ip: ip, nl: nl, dir: t.TempDir()})
	}
	// The veth carrier comes up about a second after the link.
	eventually(t, "carrier", func() bool {
		for _, n := range nodes {
			l, err := n.nl.LinkByName("eth0")
			if err != nil || l.Attrs().OperState != netlink.OperUp {
				return false
			}
		}
		return true
	})
	return nodes
}

// holds returns the addresses of vips configured on the node's eth0.
func (n *vnode) holds(t *testing.T, vips ...netip.Addr) []netip.Addr {
	t.Helper()
	l, err := n.nl.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := n.nl.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP)
		if slices.Contains(vips, ip.Unmap()) {
			out = append(out, ip.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// nsRunner starts keepalived inside a namespace.
type nsRunner struct {
	Kernel
	ns string
}

func (r nsRunner) Start(argv []string) (Process, error) {
	return r.Kernel.Start(append([]string{"ip", "netns", "exec", r.ns}, argv...))
}

// config renders a two-member group on eth0 with the given addresses.
func (n *vnode) config(t *testing.T, self, peer *vnode, prio int, vips ...netip.Addr) ([]byte, []VIP) {
	t.Helper()
	var vs []VIP
	for _, ip := range vips {
		vs = append(vs, VIP{IP: ip, Interface: "eth0", Label: Label("eth0")})
	}
	c := KeepalivedConfig{RouterID: self.name, AdvertInt: "0.1", Instances: []Instance{{
		Name: InstanceName("eth0", 4, 10), Interface: "eth0", VRID: 10, Priority: prio, Family: 4,
		Unicast: true, Source: self.ip, Peers: []netip.Addr{peer.ip}, Anchor: vs[0], Excluded: vs[1:],
	}}}
	b, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	return b, vs
}

func TestSupervisorNetns(t *testing.T) {
	requireNetns(t)
	nodes := twoNodes(t)
	a, b := nodes[0], nodes[1]
	v1, v2 := netip.MustParseAddr("203.0.113.20"), netip.MustParseAddr("203.0.113.21")
	bin, _ := exec.LookPath("keepalived")

	sups := make([]*Supervisor, 2)
	cancels := make([]context.CancelFunc, 2)
	dones := make([]chan error, 2)
	for i, n := range nodes {
		peer := nodes[1-i]
		conf, vs := n.config(t, n, peer, 254-i, v1)
		if err := Install(n.dir, conf, vs, nil); err != nil {
			t.Fatal(err)
		}
		sups[i] = NewSupervisor(SupervisorConfig{RunDir: n.dir, Keepalived: bin, ConfigID: n.name,
			Runner: nsRunner{ns: n.name}, Addrs: Kernel{Handle: n.nl}, MinBackoff: 300 * time.Millisecond}, testr.New(t))
		ctx, cancel := context.WithCancel(context.Background())
		cancels[i], dones[i] = cancel, make(chan error, 1)
		go func() { dones[i] <- sups[i].Run(ctx) }()
		t.Cleanup(func() { cancel(); <-dones[i] })
	}
	holds := func(n *vnode, want ...netip.Addr) func() bool {
		return func() bool { return slices.Equal(n.holds(t, v1, v2), want) }
	}
	eventually(t, "node1 (priority 254) master of "+v1.String(), holds(a, v1))
	if got := b.holds(t, v1, v2); len(got) != 0 {
		t.Fatalf("node2 holds %v too", got)
	}

	// A reload adds v2 without dropping v1 on the master, even for a moment.
	for i, n := range nodes {
		conf, vs := n.config(t, n, nodes[1-i], 254-i, v1, v2)
		if err := Install(n.dir, conf, vs, nil); err != nil {
			t.Fatal(err)
		}
		sups[i].Reload()
	}
	deadline := time.Now().Add(5 * time.Second)
	for !holds(a, v1, v2)() {
		if got := a.holds(t, v1, v2); !slices.Contains(got, v1) {
			t.Fatalf("the reload dropped %s from the master (holds %v)", v1, got)
		}
		if time.Now().After(deadline) {
			t.Fatalf("node1 holds %v after the reload", a.holds(t, v1, v2))
		}
		time.Sleep(2 * time.Millisecond)
	}
	if sups[0].Status().Reloads != 1 || sups[0].Status().Starts != 1 {
		t.Errorf("node1 supervisor status %+v: want one start and one reload", sups[0].Status())
	}

	// keepalived killed hard (both processes): the addresses it left are
	// removed at once, node2 takes over, node1's keepalived is restarted
	// and, with the higher priority, takes the addresses back.
	// keepalived leads its own process group: one SIGKILL reaches the
	// parent and the VRRP child at once, so neither hands over.
	if err := syscall.Kill(-sups[0].Status().PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node2 takes over", holds(b, v1, v2))
	eventually(t, "node1 restarted and master again", func() bool {
		return sups[0].Status().Starts == 2 && holds(a, v1, v2)() && holds(b)()
	})
	if st := sups[0].Status(); st.Exits != 1 || len(st.Removed) == 0 {
		t.Errorf("after the kill: status %+v, want one exit and removed leftovers", st)
	}

	// Stopping node1's supervisor hands over at once (priority 0) and
	// leaves nothing on node1.
	cancels[0]()
	if err := <-dones[0]; err != nil {
		t.Fatal(err)
	}
	dones[0] <- nil
	eventually(t, "node2 master after node1 stopped", holds(b, v1, v2))
	if got := a.holds(t, v1, v2); len(got) != 0 {
		t.Errorf("node1 still holds %v after its supervisor stopped", got)
	}
	if pids, _ := exec.Command("ip", "netns", "pids", a.name).Output(); strings.TrimSpace(string(pids)) != "" {
		t.Errorf("processes left in %s: %s", a.name, pids)
	}
	cancels[1]()
	<-dones[1]
	dones[1] <- nil
	if got := b.holds(t, v1, v2); len(got) != 0 {
		t.Errorf("node2 still holds %v after its supervisor stopped", got)
	}
}

func TestRemoveLeftoversNetns(t *testing.T) {
	requireNetns(t)
	n := twoNodes(t)[0]
	l, err := n.nl.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	add := func(cidr, label string) {
		a, err := netlink.ParseAddr(cidr)
		if err != nil {
			t.Fatal(err)
		}
		a.Label = label
		if err := n.nl.AddrAdd(l, a); err != nil {
			t.Fatalf("add %s: %v", cidr, err)
		}
	}
	add("203.0.113.30/32", "eth0:oelb") // ours, labelled
	add("2001:db8:ffff::30/128", "")    // ours, listed
	add("2001:db8:ffff::31/128", "")    // not ours
	add("203.0.113.31/32", "")          // not ours (no label, not listed)
	add("198.51.100.99/24", "")         // not ours
	listed := []VIP{{IP: netip.MustParseAddr("2001:db8:ffff::30"), Interface: "eth0"}, {IP: netip.MustParseAddr("203.0.113.31"), Interface: "eth1"}}
	removed, err := Kernel{Handle: n.nl}.RemoveLeftovers(listed)
	if err != nil {
		t.Fatal(err)
	}
	all := []netip.Addr{netip.MustParseAddr("203.0.113.30"), netip.MustParseAddr("2001:db8:ffff::30"), netip.MustParseAddr("2001:db8:ffff::31"),
		netip.MustParseAddr("203.0.113.31"), netip.MustParseAddr("198.51.100.99")}
	if got, want := n.holds(t, all...), []netip.Addr{all[4], all[3], all[2]}; !slices.Equal(got, sortAddrs(want)) {
		t.Errorf("left %v, want %v", got, sortAddrs(want))
	}
	if len(removed) != 2 {
		t.Errorf("removed %v, want the labelled and the listed address", removed)
	}
}

func sortAddrs(a []netip.Addr) []netip.Addr {
	s := slices.Clone(a)
	slices.SortFunc(s, netip.Addr.Compare)
	return s
}
