//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/speaker"
	"github.com/openelb/openelb-operator/speaker/vip"
	"github.com/openelb/openelb-operator/test/lab"
)

// The vip lab: three nodes without a BGP router, the controller role, a
// speaker per node with vip only, and (with a sidecar) `openelb speaker
// keepalived` beside each speaker on the same run dir, as the operator
// renders it in a pod.
const (
	vipPool = "203.0.113.96-203.0.113.111" // on eth0 (the LAN)
	// The second segment of scenario (d): br2 in the LAN namespace joins
	// eth1 of every node (198.18.3.1N/24) and eth2 of the client
	// (198.18.3.100/24), which routes vipPool2 out of eth2.
	vipPool2  = "203.0.113.128-203.0.113.143"
	vip2Route = "203.0.113.128/28"
	vip2Iface = "can_reach:198.18.3.100"
)

type vipLab struct {
	t        testing.TB
	l        *lab.Lab
	advert   time.Duration
	sidecar  bool
	sidecars map[string]*lab.Proc
	nl       map[string]*netlink.Handle
}

// newVIPLab starts the lab, the controller and the vip speakers.
func newVIPLab(t testing.TB, advert time.Duration, sidecar bool) *vipLab {
	t.Helper()
	l := lab.New(t, lab.Options{Router: lab.NoRouter})
	v := &vipLab{t: t, l: l, advert: advert, sidecar: sidecar, sidecars: map[string]*lab.Proc{}, nl: map[string]*netlink.Handle{}}
	for _, n := range l.Nodes {
		h, err := netns.GetFromName(n.NS.Name)
		if err != nil {
			t.Fatal(err)
		}
		nh, err := netlink.NewHandleAt(h)
		h.Close()
		if err != nil {
			t.Fatal(err)
		}
		v.nl[n.Name] = nh
		t.Cleanup(nh.Close)
	}
	ctx := t.Context()
	if _, err := l.StartController(ctx, lab.RoleOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Nodes {
		if sidecar {
			v.startSidecar(n.Name)
		}
	}
	v.startSpeakers(true)
	return v
}

func (v *vipLab) runDir(node string) string { return filepath.Join(v.l.RunDir, node+"-speaker") }

// speakerArgs: vip only (the lab's defaults enable layer2 and bgp), or,
// with vip disabled, layer2 only (a speaker needs one mode).
func (v *vipLab) speakerArgs(enabled bool) lab.RoleOptions {
	args := []string{"--enable-layer2=" + strconv.FormatBool(!enabled), "--enable-bgp=false", "--enable-keepalived-vip=" + strconv.FormatBool(enabled)}
	if enabled {
		args = append(args, "--vip-advert-interval="+v.advert.String())
		if v.sidecar {
			args = append(args, "--keepalived-sidecar")
		}
	}
	return lab.RoleOptions{Args: args}
}

func (v *vipLab) startSpeakers(enabled bool) {
	v.t.Helper()
	if err := v.l.StartSpeakers(v.t.Context(), v.speakerArgs(enabled)); err != nil {
		v.t.Fatal(err)
	}
}

func (v *vipLab) startSpeaker(node string, enabled bool) {
	v.t.Helper()
	if _, err := v.l.StartSpeaker(v.t.Context(), node, v.speakerArgs(enabled)); err != nil {
		v.t.Fatal(err)
	}
}

// startSidecar runs `openelb speaker keepalived` on the node's run dir.
func (v *vipLab) startSidecar(node string) {
	v.t.Helper()
	bin, err := lab.OpenELBBinary(v.t.Context())
	if err != nil {
		v.t.Fatal(err)
	}
	dir := v.runDir(node)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		v.t.Fatal(err)
	}
	p, err := v.l.Start(lab.ProcSpec{Name: node + "-keepalived", NS: v.l.Node(node).NS,
		Args: []string{bin, "speaker", "keepalived", "--run-dir", dir, "--node-name", node, "--log-format", "console"}})
	if err != nil {
		v.t.Fatal(err)
	}
	v.sidecars[node] = p
	err = lab.WaitFor(v.t.Context(), 10*time.Second, node+" keepalived sidecar holds the run dir", func(context.Context) (bool, error) {
		if p.Exited() {
			return false, lab.Permanent(fmt.Errorf("sidecar exited: %s", p.Tail(20)))
		}
		_, running, err := vip.ReadStatus(dir)
		return running, err
	})
	if err != nil {
		v.t.Fatal(err)
	}
}

// holders returns the nodes holding ip on an interface other than lo
// (the kube-proxy stand-in puts every Service address on lo).
func (v *vipLab) holders(ip netip.Addr) []string {
	var out []string
	for _, n := range v.l.Nodes {
		if v.holds(n.Name, ip) != "" {
			out = append(out, n.Name)
		}
	}
	return out
}

// holds returns the interface of node holding ip (not lo), or "".
func (v *vipLab) holds(node string, ip netip.Addr) string {
	for _, a := range v.addrs(node) {
		if a.ip == ip && a.link != "lo" {
			return a.link
		}
	}
	return ""
}

type nodeAddr struct {
	link  string
	ip    netip.Addr
	label string
}

func (v *vipLab) addrs(node string) []nodeAddr {
	h := v.nl[node]
	links, err := h.LinkList()
	if err != nil {
		v.t.Errorf("%s: list links: %v", node, err)
		return nil
	}
	var out []nodeAddr
	for _, l := range links {
		as, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			continue
		}
		for _, a := range as {
			ip, _ := netip.AddrFromSlice(a.IP)
			out = append(out, nodeAddr{link: l.Attrs().Name, ip: ip.Unmap(), label: a.Label})
		}
	}
	return out
}

// waitHolder waits until exactly node holds ip.
func (v *vipLab) waitHolder(ip netip.Addr, node string, timeout time.Duration) {
	v.t.Helper()
	err := lab.Poll(v.t.Context(), timeout, 10*time.Millisecond, fmt.Sprintf("%s held by %s alone", ip, node), func(context.Context) (bool, error) {
		got := v.holders(ip)
		return slices.Equal(got, []string{node}), fmt.Errorf("held by %v", got)
	})
	if err != nil {
		v.t.Fatal(err)
	}
}

// settle waits until node alone holds ip and has done so for five
// advertisements (at least a second), so that every backup's timers run
// from the master's advertisements before the next failure.
func (v *vipLab) settle(ip netip.Addr, node string) {
	v.t.Helper()
	v.waitHolder(ip, node, 30*time.Second)
	hold := max(time.Second, 5*v.advert)
	err := lab.Poll(v.t.Context(), hold+30*time.Second, 10*time.Millisecond, fmt.Sprintf("%s held by %s alone for %v", ip, node, hold), func() func(context.Context) (bool, error) {
		var since time.Time
		return func(context.Context) (bool, error) {
			if got := v.holders(ip); !slices.Equal(got, []string{node}) {
				since = time.Time{}
				return false, fmt.Errorf("held by %v", got)
			}
			if since.IsZero() {
				since = time.Now()
			}
			return time.Since(since) >= hold, nil
		}
	}())
	if err != nil {
		v.t.Fatal(err)
	}
}

// measureTakeover runs event and returns the node that then holds ip
// instead of from, and the time it took.
func (v *vipLab) measureTakeover(ip netip.Addr, from string, timeout time.Duration, event func() error) (string, time.Duration) {
	v.t.Helper()
	var to string
	d, err := lab.Measure(v.t.Context(), timeout, 2*time.Millisecond, event, func(context.Context) (bool, error) {
		for _, n := range v.holders(ip) {
			if n != from {
				to = n
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		v.t.Fatalf("takeover of %s from %s: %v", ip, from, err)
	}
	return to, d
}

func (v *vipLab) status(node string) vip.Status {
	st, _, err := vip.ReadStatus(v.runDir(node))
	if err != nil {
		v.t.Fatal(err)
	}
	return st
}

// waitLoaded waits until keepalived on every node runs the configuration
// its speaker installed.
func (v *vipLab) waitLoaded() {
	v.t.Helper()
	err := lab.WaitFor(v.t.Context(), 20*time.Second, "keepalived runs the installed configuration on every node", func(context.Context) (bool, error) {
		for _, n := range v.l.Nodes {
			b, err := os.ReadFile(filepath.Join(v.runDir(n.Name), vip.ConfigFile))
			if err != nil {
				return false, err
			}
			if st := v.status(n.Name); st.State != vip.StateRunning || st.Config != vip.Hash(b) {
				return false, fmt.Errorf("%s: %+v", n.Name, st)
			}
		}
		return true, nil
	})
	if err != nil {
		v.t.Fatal(err)
	}
}

// killKeepalived sends SIGKILL to the node's keepalived process group
// (parent and VRRP child at once: nothing hands over).
func (v *vipLab) killKeepalived(node string) error {
	st := v.status(node)
	if st.State != vip.StateRunning || st.PID == 0 {
		return fmt.Errorf("%s: keepalived not running: %+v", node, st)
	}
	return syscall.Kill(-st.PID, syscall.SIGKILL)
}

// plan reads the recorded plan.
func (v *vipLab) plan() vip.Plan {
	v.t.Helper()
	var cm corev1.ConfigMap
	if err := v.l.Kube.Get(v.t.Context(), client.ObjectKey{Namespace: lab.Namespace, Name: vip.RecordName}, &cm); err != nil {
		v.t.Fatal(err)
	}
	rec, err := vip.DecodeRecord(cm.Data)
	if err != nil {
		v.t.Fatal(err)
	}
	return rec.Plan
}

// waitPlanned waits until the recorded plan holds every ip in a group of
// every node (the speakers that start last join the groups a moment
// later) and returns each ip's group.
func (v *vipLab) waitPlanned(ips ...netip.Addr) map[netip.Addr]vip.Group {
	return v.waitPlannedWith(len(v.l.Nodes), ips...)
}

// waitPlannedWith waits until the recorded plan holds every ip in a group
// of members nodes.
func (v *vipLab) waitPlannedWith(members int, ips ...netip.Addr) map[netip.Addr]vip.Group {
	v.t.Helper()
	out := map[netip.Addr]vip.Group{}
	err := lab.WaitFor(v.t.Context(), 20*time.Second, fmt.Sprintf("%v in the vip plan", ips), func(ctx context.Context) (bool, error) {
		var cm corev1.ConfigMap
		if err := v.l.Kube.Get(ctx, client.ObjectKey{Namespace: lab.Namespace, Name: vip.RecordName}, &cm); err != nil {
			return false, err
		}
		rec, err := vip.DecodeRecord(cm.Data)
		if err != nil {
			return false, err
		}
		for _, ip := range ips {
			i := rec.Plan.GroupOf(ip)
			if i < 0 || len(rec.Plan.Groups[i].Members) != members {
				return false, fmt.Errorf("%s not planned with %d members in %s", ip, members, recordJSON(rec.Plan))
			}
			out[ip] = rec.Plan.Groups[i]
		}
		return true, nil
	})
	if err != nil {
		v.t.Fatal(err)
	}
	return out
}

// instances parses a node's installed keepalived.conf: instance name →
// VRID, priority and interface.
type instance struct {
	name, iface    string
	vrid, priority int
}

var (
	reInstance = regexp.MustCompile(`(?m)^vrrp_instance (\S+) \{`)
	reField    = regexp.MustCompile(`(?m)^\s+(interface|virtual_router_id|priority) (\S+)$`)
)

func (v *vipLab) instances(node string) map[string]instance {
	v.t.Helper()
	b, err := os.ReadFile(filepath.Join(v.runDir(node), vip.ConfigFile))
	if err != nil {
		v.t.Fatal(err)
	}
	out := map[string]instance{}
	blocks := reInstance.FindAllSubmatchIndex(b, -1)
	for i, m := range blocks {
		end := len(b)
		if i+1 < len(blocks) {
			end = blocks[i+1][0]
		}
		in := instance{name: string(b[m[2]:m[3]])}
		for _, f := range reField.FindAllSubmatch(b[m[1]:end], -1) {
			switch string(f[1]) {
			case "interface":
				in.iface = string(f[2])
			case "virtual_router_id":
				in.vrid, _ = strconv.Atoi(string(f[2]))
			case "priority":
				in.priority, _ = strconv.Atoi(string(f[2]))
			}
		}
		out[in.name] = in
	}
	return out
}

// leftovers lists, on every node namespace, keepalived processes and
// addresses that vip mode configured: labelled "<iface>:oelb", or any
// address of the given pools on an interface other than lo.
func (v *vipLab) leftovers(pools ...string) []string {
	var left []string
	for _, n := range v.l.Nodes {
		pids, err := n.NS.PIDs()
		if err != nil {
			left = append(left, fmt.Sprintf("%s: %v", n.Name, err))
		}
		for _, pid := range pids {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if strings.TrimSpace(string(comm)) == "keepalived" {
				left = append(left, fmt.Sprintf("%s: keepalived pid %d", n.Name, pid))
			}
		}
		for _, a := range v.addrs(n.Name) {
			inPool := false
			for _, p := range pools {
				first, last, _ := speaker.ParseRange(p)
				inPool = inPool || (first.Compare(a.ip) <= 0 && a.ip.Compare(last) <= 0)
			}
			if strings.HasSuffix(a.label, vip.LabelSuffix) || (inPool && a.link != "lo") {
				left = append(left, fmt.Sprintf("%s: %s on %s (label %q)", n.Name, a.ip, a.link, a.label))
			}
		}
	}
	return left
}

func vipEip(name, pool, iface string) *networkv1alpha2.Eip {
	return &networkv1alpha2.Eip{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: networkv1alpha2.EipSpec{Address: pool, Protocol: networkv1alpha2.ProtocolVIP, Interface: iface}}
}

// createVIPService creates the Service and waits for its address.
func (v *vipLab) createVIPService(s *corev1.Service) netip.Addr {
	v.t.Helper()
	ctx := v.t.Context()
	if err := v.l.Kube.Create(ctx, s); err != nil {
		v.t.Fatalf("create service %s: %v", s.Name, err)
	}
	var ip netip.Addr
	err := lab.WaitFor(ctx, 30*time.Second, "an address for "+s.Name, func(ctx context.Context) (bool, error) {
		var got corev1.Service
		if err := v.l.Kube.Get(ctx, client.ObjectKeyFromObject(s), &got); err != nil {
			return false, err
		}
		for _, in := range got.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(in.IP); err == nil {
				ip = a
				return true, nil
			}
		}
		return false, fmt.Errorf("no ingress yet")
	})
	if err != nil {
		v.t.Fatal(err)
	}
	return ip
}

// waitEvent waits for an Event on a Service with reason whose message
// contains text.
func (v *vipLab) waitEvent(svc, reason, text string) {
	v.t.Helper()
	err := lab.WaitFor(v.t.Context(), 15*time.Second, fmt.Sprintf("a %s Event on %s mentioning %q", reason, svc, text), func(ctx context.Context) (bool, error) {
		var evs corev1.EventList
		if err := v.l.Kube.List(ctx, &evs, client.InNamespace("default")); err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == svc && e.Reason == reason && strings.Contains(e.Message, text) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		v.t.Fatal(err)
	}
}

// waitAnnotation waits for the announcer annotation of a Service.
func (v *vipLab) waitAnnotation(svc, want string) {
	v.t.Helper()
	err := lab.WaitFor(v.t.Context(), 20*time.Second, fmt.Sprintf("announcer of %s = %s", svc, want), func(ctx context.Context) (bool, error) {
		var s corev1.Service
		if err := v.l.Kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: svc}, &s); err != nil {
			return false, err
		}
		got := s.Annotations[networkv1alpha2.AnnotationAnnouncer]
		return got == want, fmt.Errorf("annotation %q", got)
	})
	if err != nil {
		v.t.Fatal(err)
	}
}

// waitReaches waits until the client's HTTP request to ip reaches node.
func (v *vipLab) waitReaches(ip netip.Addr, node string) {
	v.t.Helper()
	var got string
	err := lab.WaitFor(v.t.Context(), 15*time.Second, fmt.Sprintf("client reaches %s on %s", ip, node), func(ctx context.Context) (bool, error) {
		var err error
		got, err = v.l.HTTPGet(ctx, netip.AddrPortFrom(ip, 80))
		return got == node, fmt.Errorf("reached %q (%v)", got, err)
	})
	if err != nil {
		for _, n := range v.l.Nodes {
			out, _ := n.NS.Run(context.Background(), "sh", "-c", "ip -br addr; ip neigh; ss -ltn; sysctl net.ipv4.conf.all.arp_ignore net.ipv4.conf.eth0.arp_ignore net.ipv4.ip_forward")
			v.t.Logf("diagnostics of %s:\n%s", n.Name, out)
		}
		out, _ := v.l.Client.Run(context.Background(), "sh", "-c", "ip neigh; timeout 3 tcpdump -nn -e -i eth0 -c 20 2>&1 & sleep 0.2; curl -m 2 -s http://"+ip.String()+"/; wait")
		v.t.Logf("diagnostics of the client (neighbours, one request traced):\n%s", out)
		v.t.Fatal(err)
	}
}

// clientMAC returns the MAC the client's neighbour table holds for ip.
func (v *vipLab) clientMAC(ip netip.Addr) net.HardwareAddr {
	mac, _ := v.l.ClientNeighbor(ip)
	return mac
}

// macOfNode returns the MAC of a node's interface.
func (v *vipLab) macOfNode(node, iface string) net.HardwareAddr {
	l, err := v.nl[node].LinkByName(iface)
	if err != nil {
		return nil
	}
	return l.Attrs().HardwareAddr
}

// addVIPSegment builds the second segment of scenario (d).
func (v *vipLab) addVIPSegment() {
	v.t.Helper()
	ctx := v.t.Context()
	l := v.l
	must := func(ns *lab.NS, args ...string) {
		v.t.Helper()
		if out, err := ns.Run(ctx, args...); err != nil {
			v.t.Fatalf("%s: %s: %v: %s", ns.Short, strings.Join(args, " "), err, out)
		}
	}
	must(l.LAN, "ip", "link", "add", "br2", "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
	must(l.LAN, "ip", "link", "set", "br2", "up")
	attach := func(ns *lab.NS, port, ifname, addr string) {
		must(l.LAN, "ip", "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns.Name)
		must(l.LAN, "ip", "link", "set", port, "master", "br2", "up")
		must(ns, "ip", "addr", "add", addr, "dev", ifname)
		must(ns, "ip", "link", "set", ifname, "up")
	}
	for i, n := range l.Nodes {
		attach(n.NS, "v2-"+n.Name, "eth1", fmt.Sprintf("198.18.3.%d/24", 11+i))
		must(n.NS, "ip", "route", "add", vip2Route, "dev", "eth1")
	}
	attach(l.Client, "v2-client", "eth2", "198.18.3.100/24")
	must(l.Client, "ip", "route", "add", vip2Route, "dev", "eth2")
	err := lab.Poll(ctx, 10*time.Second, 20*time.Millisecond, "second segment carrier", func(ctx context.Context) (bool, error) {
		for _, n := range l.Nodes {
			if out, err := n.NS.Run(ctx, "ip", "-br", "link", "show", "eth1"); err != nil || !strings.Contains(out, " UP ") {
				return false, fmt.Errorf("%s eth1: %s", n.Name, out)
			}
		}
		out, err := l.Client.Run(ctx, "ip", "-br", "link", "show", "eth2")
		return err == nil && strings.Contains(out, " UP "), fmt.Errorf("client eth2: %s", out)
	})
	if err != nil {
		v.t.Fatal(err)
	}
}

// waitReady waits until the node's speaker answers /readyz.
func (v *vipLab) waitReady(node string) {
	v.t.Helper()
	ns := v.l.Node(node).NS
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: ns.DialContext, DisableKeepAlives: true}}
	err := lab.WaitFor(v.t.Context(), 20*time.Second, node+" speaker ready", func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/readyz", lab.SpeakerMetricsPort), nil)
		resp, err := hc.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("readyz: %d", resp.StatusCode)
	})
	if err != nil {
		v.t.Fatal(err)
	}
}

// recordJSON renders v for logs.
func recordJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(bytes.TrimSpace(b))
}
