//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

// Neighbor returns the MAC this namespace's neighbour table holds for ip
// on any link, and the entry's state name ("REACHABLE", "STALE", …). It
// returns a nil MAC when there is no usable entry (none, INCOMPLETE,
// FAILED). One netlink dump: fit for 5 ms polling.
func (n *NS) Neighbor(ip netip.Addr) (net.HardwareAddr, string, error) {
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	var list []netlink.Neigh
	var err error
	for range 3 { // a dump racing with a change is interrupted; retry
		list, err = n.nl.NeighList(0, fam)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("neighbours in %s: %w", n.Short, err)
	}
	for _, e := range list {
		a, ok := netip.AddrFromSlice(e.IP)
		if !ok || a.Unmap() != ip {
			continue
		}
		state := neighState(e.State)
		if e.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) != 0 || e.State == netlink.NUD_NONE || len(e.HardwareAddr) == 0 {
			return nil, state, nil
		}
		return e.HardwareAddr, state, nil
	}
	return nil, "", nil
}

func neighState(s int) string {
	names := []struct {
		bit  int
		name string
	}{
		{netlink.NUD_INCOMPLETE, "INCOMPLETE"}, {netlink.NUD_REACHABLE, "REACHABLE"}, {netlink.NUD_STALE, "STALE"},
		{netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"}, {netlink.NUD_FAILED, "FAILED"},
		{netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_PERMANENT, "PERMANENT"},
	}
	var out []string
	for _, n := range names {
		if s&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "NONE"
	}
	return strings.Join(out, "|")
}

// FlushNeighbor deletes the namespace's neighbour entry for ip, if any.
func (n *NS) FlushNeighbor(ip netip.Addr) error {
	_, err := n.Run(context.Background(), "ip", "neigh", "flush", "to", ip.String())
	return err
}

// ClientNeighbor is Neighbor in the client namespace: which MAC does the
// client see for ip.
func (l *Lab) ClientNeighbor(ip netip.Addr) (net.HardwareAddr, error) {
	mac, _, err := l.Client.Neighbor(ip)
	return mac, err
}

var (
	arpingReply = regexp.MustCompile(`reply from \S+ \[([0-9A-Fa-f:]{17})\]`)
	ndiscReply  = regexp.MustCompile(`Target link-layer address: ([0-9A-Fa-f:]{17})`)
)

// Arping sends one ARP request for ip from the client's LAN port
// (`arping -c 1 -w 1 -I eth0`) and returns the distinct MACs that answered;
// an error when none did. ARP requests do not create neighbour entries;
// Ping does.
func (l *Lab) Arping(ctx context.Context, ip netip.Addr) ([]net.HardwareAddr, error) {
	if !ip.Is4() {
		return nil, fmt.Errorf("arping %s: not an IPv4 address (use Ndisc)", ip)
	}
	out, err := l.Client.Run(ctx, "arping", "-c", "1", "-w", "1", "-I", "eth0", ip.String())
	macs := parseMACs(arpingReply, out)
	if len(macs) == 0 {
		return nil, fmt.Errorf("arping %s: no reply (%v): %s", ip, err, strings.TrimSpace(out))
	}
	return macs, nil
}

// Ndisc sends one neighbour solicitation for ip from the client's LAN port
// (`ndisc6 -r 1 -w 500`) and returns the MAC of the answer.
func (l *Lab) Ndisc(ctx context.Context, ip netip.Addr) (net.HardwareAddr, error) {
	if !ip.Is6() {
		return nil, fmt.Errorf("ndisc6 %s: not an IPv6 address (use Arping)", ip)
	}
	out, err := l.Client.Run(ctx, "ndisc6", "-r", "1", "-w", "500", ip.String(), "eth0")
	macs := parseMACs(ndiscReply, out)
	if len(macs) == 0 {
		return nil, fmt.Errorf("ndisc6 %s: no reply (%v): %s", ip, err, strings.TrimSpace(out))
	}
	return macs[0], nil
}

// ResolveMAC asks the LAN who has ip (Arping or Ndisc) until one answer
// comes or timeout ends, and returns the first answer's MAC. The first
// request may precede the announcer's socket (lab-recipes §9.10), hence
// the retries.
func (l *Lab) ResolveMAC(ctx context.Context, ip netip.Addr, timeout time.Duration) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := WaitFor(ctx, timeout, "a neighbour answer for "+ip.String(), func(ctx context.Context) (bool, error) {
		if ip.Is4() {
			macs, err := l.Arping(ctx, ip)
			if err != nil {
				return false, err
			}
			mac = macs[0]
			return true, nil
		}
		m, err := l.Ndisc(ctx, ip)
		mac = m
		return err == nil, err
	})
	return mac, err
}

func parseMACs(re *regexp.Regexp, out string) []net.HardwareAddr {
	var macs []net.HardwareAddr
	seen := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		mac, err := net.ParseMAC(m[1])
		if err != nil || seen[mac.String()] {
			continue
		}
		seen[mac.String()] = true
		macs = append(macs, mac)
	}
	return macs
}

// Ping sends one echo request from the client (1 s timeout). A successful
// ping leaves a neighbour entry for on-link addresses.
func (l *Lab) Ping(ctx context.Context, ip netip.Addr) error {
	return ping(ctx, l.Client, ip)
}

func ping(ctx context.Context, n *NS, ip netip.Addr) error {
	_, err := n.Run(ctx, "ping", "-c", "1", "-W", "1", "-q", ip.String())
	return err
}

// Ping sends one echo request from the node (1 s timeout).
func (n *Node) Ping(ctx context.Context, ip netip.Addr) error { return ping(ctx, n.NS, ip) }

// HTTPGet sends GET / from the client to addr (a new connection with a
// fresh local port each time, 2 s timeout) and returns the answering node's
// name.
func (l *Lab) HTTPGet(ctx context.Context, addr netip.AddrPort) (string, error) {
	return httpGet(ctx, l.Client, addr)
}

func httpGet(ctx context.Context, from *NS, addr netip.AddrPort) (string, error) {
	tr := &http.Transport{DialContext: from.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr.String()+"/", nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s from %s: %w", addr, from.Short, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", fmt.Errorf("GET %s from %s: %w", addr, from.Short, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s from %s: status %d", addr, from.Short, resp.StatusCode)
	}
	return strings.TrimSpace(string(body)), nil
}

// Reaches reports whether a request from the client to addr is answered by
// node. A failed request is an error.
func (l *Lab) Reaches(ctx context.Context, addr netip.AddrPort, node string) (bool, error) {
	got, err := l.HTTPGet(ctx, addr)
	if err != nil {
		return false, err
	}
	return got == node, nil
}

// Spread sends n requests from the client to addr, each on a new
// connection (so ECMP with the router's L4 hash spreads them), and counts
// the answers per node. Failed requests are counted under "".
func (l *Lab) Spread(ctx context.Context, addr netip.AddrPort, n int) map[string]int {
	out := map[string]int{}
	for range n {
		node, err := l.HTTPGet(ctx, addr)
		if err != nil {
			node = ""
		}
		out[node]++
	}
	return out
}
