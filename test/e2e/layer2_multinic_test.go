//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/election"
	"github.com/openelb/openelb-operator/speaker"
	"github.com/openelb/openelb-operator/test/lab"
)

// The second segment of scenario (h): a bridge br1 in the LAN namespace
// joining eth1 of node1 and node2 (198.18.2.1N/24, MAC 02:00:00:00:02:1N)
// and eth2 of the client (198.18.2.100/24). Pool 203.0.113.64/28 is
// reachable there: the client routes it out of eth2, node1 and node2 route
// it out of eth1. node3 has no eth1. Everything lives in the lab's
// namespaces and disappears with them.
const (
	nic2Pool  = "203.0.113.64-203.0.113.79"
	nic2Route = "203.0.113.64/28"
)

var nic2Nodes = []string{"node1", "node2"}

// nic2MAC is the MAC of a node's eth1 (nil for nodes without one).
func nic2MAC(n *lab.Node) net.HardwareAddr {
	i, err := strconv.Atoi(strings.TrimPrefix(n.Name, "node"))
	if err != nil {
		return nil
	}
	return net.HardwareAddr{2, 0, 0, 0, 2, byte(0x10 + i)}
}

func addSecondSegment(ctx context.Context, t *testing.T, l *lab.Lab) {
	t.Helper()
	must := func(ns *lab.NS, args ...string) {
		t.Helper()
		if out, err := ns.Run(ctx, args...); err != nil {
			t.Fatalf("%s: %s: %v: %s", ns.Short, strings.Join(args, " "), err, out)
		}
	}
	must(l.LAN, "ip", "link", "add", "br1", "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
	must(l.LAN, "ip", "link", "set", "br1", "up")
	attach := func(ns *lab.NS, port, ifname, mac, addr string) {
		must(l.LAN, "ip", "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns.Name)
		must(l.LAN, "ip", "link", "set", port, "master", "br1", "up")
		if mac != "" {
			must(ns, "ip", "link", "set", ifname, "address", mac)
		}
		must(ns, "ip", "addr", "add", addr, "dev", ifname)
		must(ns, "ip", "link", "set", ifname, "up")
	}
	for _, name := range nic2Nodes {
		n := l.Node(name)
		attach(n.NS, "n2-"+name, "eth1", nic2MAC(n).String(), fmt.Sprintf("198.18.2.%d/24", 10+nodeIndex(name)))
		must(n.NS, "ip", "route", "add", nic2Route, "dev", "eth1")
	}
	attach(l.Client, "n2-client", "eth2", "", "198.18.2.100/24")
	must(l.Client, "ip", "route", "add", nic2Route, "dev", "eth2")
	err := lab.Poll(ctx, 10*time.Second, 20*time.Millisecond, "second segment carrier", func(ctx context.Context) (bool, error) {
		for _, x := range []struct {
			ns *lab.NS
			i  string
		}{{l.Node("node1").NS, "eth1"}, {l.Node("node2").NS, "eth1"}, {l.Client, "eth2"}} {
			out, err := x.ns.Run(ctx, "ip", "-br", "link", "show", x.i)
			if err != nil || !strings.Contains(out, " UP ") {
				return false, fmt.Errorf("%s %s: %s", x.ns.Short, x.i, out)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func nodeIndex(name string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(name, "node"))
	return i
}

var arpingFrom = regexp.MustCompile(`reply from \S+ \[([0-9A-Fa-f:]{17})\]`)

// arpingOn sends count ARP requests for ip out of the client's interface
// and returns every answer's MAC.
func arpingOn(ctx context.Context, l *lab.Lab, iface string, ip netip.Addr, count int) []net.HardwareAddr {
	out, _ := l.Client.Run(ctx, "arping", "-c", strconv.Itoa(count), "-w", strconv.Itoa(count+1), "-I", iface, ip.String())
	var macs []net.HardwareAddr
	for _, m := range arpingFrom.FindAllStringSubmatch(out, -1) {
		if hw, err := net.ParseMAC(m[1]); err == nil {
			macs = append(macs, hw)
		}
	}
	return macs
}

// multiNIC is scenario (h): an Eip on eth1; only node1 and node2 have it.
// The address announced is one that node3 would win if it were eligible,
// so "node3 never wins" is not luck.
func (s *scenario) multiNIC(ctx context.Context, t *testing.T) {
	addSecondSegment(ctx, t, s.l)
	eip := &networkv1alpha2.Eip{}
	eip.Name = "eip-nic2"
	eip.Spec = networkv1alpha2.EipSpec{Address: nic2Pool, Protocol: "layer2", Interface: "eth1"}
	if err := s.l.Kube.Create(ctx, eip); err != nil {
		t.Fatal(err)
	}
	first, last, _ := speaker.ParseRange(nic2Pool)
	var want []netip.Addr
	for ip := first; !last.Less(ip) && len(want) < 2; ip = ip.Next() {
		if election.Rank(ip.String(), s.nodes)[0] == "node3" {
			want = append(want, ip)
		}
	}
	if len(want) < 2 {
		t.Fatalf("no two addresses of %s that node3 would win", nic2Pool)
	}
	var svcs []*corev1.Service
	for i, ip := range want {
		svcs = append(svcs, lbService(fmt.Sprintf("nic2-%d", i), "eip-nic2", func(svc *corev1.Service) {
			svc.Annotations[networkv1alpha2.AnnotationRequestedIP] = ip.String()
		}))
	}
	got := createServices(ctx, t, s.l, svcs...)
	for name, ip := range got {
		winner := election.Rank(ip.String(), nic2Nodes)[0]
		waitAnnouncer(ctx, t, s.l, name, winner)
		err := lab.WaitFor(ctx, 10*time.Second, fmt.Sprintf("%s answered on eth2 by %s's eth1", ip, winner), func(ctx context.Context) (bool, error) {
			macs := arpingOn(ctx, s.l, "eth2", ip, 1)
			return len(macs) == 1 && bytes.Equal(macs[0], nic2MAC(s.l.Node(winner))), fmt.Errorf("answers %v", macs)
		})
		if err != nil {
			t.Fatal(err)
		}
		if macs := arpingOn(ctx, s.l, "eth2", ip, 3); len(macs) != 3 || !bytes.Equal(macs[0], macs[1]) || !bytes.Equal(macs[1], macs[2]) {
			t.Fatalf("%s on eth2: answers %v, want 3 from one node", ip, macs)
		}
		if macs := arpingOn(ctx, s.l, "eth0", ip, 1); len(macs) != 0 {
			t.Fatalf("%s answered on the first LAN by %v: layer2 must announce only on the Eip's interface", ip, macs)
		}
		t.Logf("multi-NIC: %s (node3 would rank first) announced by %s on eth1 only", ip, winner)
	}
}
