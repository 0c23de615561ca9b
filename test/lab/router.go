//go:build linux

package lab

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/vishvananda/netlink"
)

//go:embed templates/*.tmpl
var templates embed.FS

// routerData feeds the router templates.
type routerData struct {
	Prefix     string
	Dir        string
	ASN        int
	RouterID   netip.Addr
	RouterIPv6 netip.Addr
	LANv4      netip.Prefix
	LANv6      netip.Prefix
	BFD        bool
}

// renderTemplate renders templates/<name>.tmpl.
func renderTemplate(name string, data any) ([]byte, error) {
	t, err := template.ParseFS(templates, "templates/"+name+".tmpl")
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

type routerDaemon interface {
	kind() RouterKind
	procs() []*Proc
}

type frrRouter struct {
	dir       string
	daemons   []*Proc
	bfd       bool
	startedAt time.Time
}

func (f *frrRouter) kind() RouterKind { return FRR }
func (f *frrRouter) procs() []*Proc   { return f.daemons }

type birdRouter struct {
	dir    string
	daemon *Proc
}

func (b *birdRouter) kind() RouterKind { return BIRD }
func (b *birdRouter) procs() []*Proc   { return []*Proc{b.daemon} }

// RouterKind is the routing daemon running in the router namespace.
func (l *Lab) RouterKind() RouterKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.router == nil {
		return NoRouter
	}
	return l.router.kind()
}

// StartRouter starts a routing daemon in the router namespace, stopping the
// current one first. Switching between FRR and BIRD in one lab is how the
// self-test checks both against the same speakers.
func (l *Lab) StartRouter(ctx context.Context, kind RouterKind) error {
	if err := l.StopRouter(); err != nil {
		return err
	}
	start := time.Now()
	var err error
	switch kind {
	case FRR:
		err = l.startFRR(ctx)
	case BIRD:
		err = l.startBIRD(ctx)
	case NoRouter:
		return nil
	default:
		return fmt.Errorf("lab: unknown router %q", kind)
	}
	if err != nil {
		return err
	}
	l.logf("lab: router %s started in %v", kind, time.Since(start).Round(time.Millisecond))
	return nil
}

// StopRouter stops the routing daemon (SIGTERM; its kernel routes go with
// it) and waits until it is gone.
func (l *Lab) StopRouter() error {
	l.mu.Lock()
	r := l.router
	l.router = nil
	l.mu.Unlock()
	if r == nil {
		return nil
	}
	ps := r.procs()
	for i := len(ps) - 1; i >= 0; i-- {
		ps[i].Terminate(3 * time.Second)
	}
	return nil
}

func (l *Lab) routerData(dir string) routerData {
	return routerData{
		Prefix: l.Prefix, Dir: dir, ASN: RouterASN,
		RouterID: l.Topology.Router.IPv4, RouterIPv6: l.Topology.Router.IPv6,
		LANv4: LANv4, LANv6: LANv6, BFD: l.Options.BFD,
	}
}

func chownTree(dir, userName string) error {
	u, err := user.Lookup(userName)
	if err != nil {
		return fmt.Errorf("user %s: %w", userName, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func (l *Lab) startFRR(ctx context.Context) error {
	dir := filepath.Join(l.RunDir, "router-frr")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data := l.routerData(dir)
	files := map[string][]byte{
		"zebra.conf": []byte("hostname router\n"),
		"vtysh.conf": []byte("service integrated-vtysh-config\n"),
	}
	var err error
	if files["bgpd.conf"], err = renderTemplate("frr-bgpd.conf", data); err != nil {
		return err
	}
	if l.Options.BFD {
		if files["bfdd.conf"], err = renderTemplate("frr-bfdd.conf", data); err != nil {
			return err
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	if err := chownTree(dir, "frr"); err != nil {
		return err
	}
	// Every daemon runs in the foreground as a child of the harness, with
	// private pid, config, socket and log paths; -P 0 disables the TCP vty.
	// zebra must drop to the frr user (it refuses root without the frrvty
	// group); bgpd runs as root (-S), which keeps the parent-death signal.
	opts := func(d string, extra ...string) []string {
		return append([]string{"/usr/lib/frr/" + d,
			"-i", filepath.Join(dir, d+".pid"), "-z", filepath.Join(dir, "zserv.api"),
			"--vty_socket", dir, "-f", filepath.Join(dir, d+".conf"),
			"--log", "file:" + filepath.Join(dir, d+".log"), "-P", "0"}, extra...)
	}
	r := &frrRouter{dir: dir, bfd: l.Options.BFD, startedAt: time.Now()}
	zebra, err := l.Start(ProcSpec{Name: "router-zebra", NS: l.Router, Args: opts("zebra", "-u", "frr", "-g", "frr")})
	if err != nil {
		return err
	}
	r.daemons = append(r.daemons, zebra)
	l.setRouter(r)
	if err := l.waitFile(ctx, zebra, filepath.Join(dir, "zserv.api")); err != nil {
		return err
	}
	bgpd, err := l.Start(ProcSpec{Name: "router-bgpd", NS: l.Router, Args: opts("bgpd", "-S")})
	if err != nil {
		return err
	}
	r.daemons = append(r.daemons, bgpd)
	if l.Options.BFD {
		bfdd, err := l.Start(ProcSpec{Name: "router-bfdd", NS: l.Router, Args: opts("bfdd", "-u", "frr", "-g", "frr", "--bfdctl", filepath.Join(dir, "bfdd.sock"))})
		if err != nil {
			return err
		}
		r.daemons = append(r.daemons, bfdd)
	}
	// Ready when bgpd answers on its vty socket.
	return WaitFor(ctx, 10*time.Second, "FRR bgpd vty", func(ctx context.Context) (bool, error) {
		for _, p := range r.daemons {
			if p.Exited() {
				return false, Permanent(fmt.Errorf("%s exited: %v\n%s", p.Name, p.ExitErr(), p.Tail(20)))
			}
		}
		_, err := l.Vtysh(ctx, "show bgp summary json")
		return err == nil, err
	})
}

func (l *Lab) setRouter(r routerDaemon) {
	l.mu.Lock()
	l.router = r
	l.mu.Unlock()
}

func (l *Lab) waitFile(ctx context.Context, p *Proc, path string) error {
	return Poll(ctx, 10*time.Second, 5*time.Millisecond, path, func(context.Context) (bool, error) {
		if p.Exited() {
			return false, Permanent(fmt.Errorf("%s exited: %v\n%s", p.Name, p.ExitErr(), p.Tail(20)))
		}
		_, err := os.Stat(path)
		return err == nil, nil
	})
}

func (l *Lab) startBIRD(ctx context.Context) error {
	dir := filepath.Join(l.RunDir, "router-bird")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf, err := renderTemplate("bird.conf", l.routerData(dir))
	if err != nil {
		return err
	}
	confPath := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "bird", "-p", "-c", confPath).CombinedOutput(); err != nil {
		return fmt.Errorf("bird config check: %w: %s", err, bytes.TrimSpace(out))
	}
	// Foreground, as root (keeps the parent-death signal).
	ctl := filepath.Join(dir, "bird.ctl")
	p, err := l.Start(ProcSpec{Name: "router-bird", NS: l.Router, Args: []string{"bird", "-f", "-c", confPath, "-s", ctl, "-P", filepath.Join(dir, "bird.pid")}})
	if err != nil {
		return err
	}
	l.setRouter(&birdRouter{dir: dir, daemon: p})
	return WaitFor(ctx, 10*time.Second, "BIRD control socket", func(ctx context.Context) (bool, error) {
		if p.Exited() {
			return false, Permanent(fmt.Errorf("bird exited: %v\n%s", p.ExitErr(), p.Tail(20)))
		}
		_, err := l.Birdc(ctx, "show", "status")
		return err == nil, err
	})
}

// Vtysh runs FRR vtysh commands against the lab router and returns the
// output.
func (l *Lab) Vtysh(ctx context.Context, cmds ...string) (string, error) {
	l.mu.Lock()
	f, ok := l.router.(*frrRouter)
	l.mu.Unlock()
	if !ok {
		return "", errors.New("vtysh: the router is not running FRR")
	}
	args := []string{"--vty_socket", f.dir, "--config_dir", f.dir}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "vtysh", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vtysh %s: %w: %s", strings.Join(cmds, "; "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Birdc runs a birdc command against the lab router.
func (l *Lab) Birdc(ctx context.Context, args ...string) (string, error) {
	l.mu.Lock()
	b, ok := l.router.(*birdRouter)
	l.mu.Unlock()
	if !ok {
		return "", errors.New("birdc: the router is not running BIRD")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "birdc", append([]string{"-s", filepath.Join(b.dir, "bird.ctl")}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// BGPEstablished returns the addresses of the neighbours whose BGP session
// with the router is Established, sorted, from the running daemon.
func (l *Lab) BGPEstablished(ctx context.Context) ([]netip.Addr, error) {
	switch l.RouterKind() {
	case FRR:
		out, err := l.Vtysh(ctx, "show bgp summary json")
		if err != nil {
			return nil, err
		}
		return parseFRRSummary([]byte(out))
	case BIRD:
		out, err := l.Birdc(ctx, "show", "protocols", "all")
		if err != nil {
			return nil, err
		}
		return parseBIRDProtocols(out), nil
	default:
		return nil, errors.New("no routing daemon in the router")
	}
}

// BGPNextHops returns the next hops the routing daemon selected for prefix
// (FRR: the selected route's active next hops; BIRD: the next hops of every
// path it holds, which "merge paths" installs as one multipath route).
func (l *Lab) BGPNextHops(ctx context.Context, prefix netip.Prefix) ([]netip.Addr, error) {
	switch l.RouterKind() {
	case FRR:
		fam := "ip"
		if prefix.Addr().Is6() {
			fam = "ipv6"
		}
		out, err := l.Vtysh(ctx, fmt.Sprintf("show %s route %s json", fam, prefix.Masked()))
		if err != nil {
			return nil, err
		}
		return parseFRRRoute([]byte(out), prefix.Masked())
	case BIRD:
		out, err := l.Birdc(ctx, "show", "route", prefix.Masked().String())
		if err != nil {
			return nil, err
		}
		return parseBIRDRoute(out), nil
	default:
		return nil, errors.New("no routing daemon in the router")
	}
}

// RouterNextHops returns the next hops of prefix in the router's kernel
// FIB (what forwarding uses), sorted; empty when there is no such route.
// It is cheap (one netlink dump) and fit for 5–10 ms polling.
func (l *Lab) RouterNextHops(prefix netip.Prefix) ([]netip.Addr, error) {
	return fibNextHops(l.Router, prefix)
}

func fibNextHops(n *NS, prefix netip.Prefix) ([]netip.Addr, error) {
	fam := netlink.FAMILY_V4
	if prefix.Addr().Is6() {
		fam = netlink.FAMILY_V6
	}
	filter := &netlink.Route{Dst: prefixNet(prefix), Table: syscall.RT_TABLE_MAIN}
	routes, err := n.nl.RouteListFiltered(fam, filter, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("routes for %s in %s: %w", prefix, n.Short, err)
	}
	var hops []netip.Addr
	for _, r := range routes {
		if r.Gw != nil {
			if a, ok := netip.AddrFromSlice(r.Gw); ok {
				hops = append(hops, a.Unmap())
			}
		}
		for _, nh := range r.MultiPath {
			if a, ok := netip.AddrFromSlice(nh.Gw); ok && nh.Gw != nil {
				hops = append(hops, a.Unmap())
			}
		}
	}
	return sortedUnique(hops), nil
}

// parseFRRSummary reads `show bgp summary json` (all address families).
func parseFRRSummary(b []byte) ([]netip.Addr, error) {
	var s map[string]struct {
		Peers map[string]struct {
			State string `json:"state"`
		} `json:"peers"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse FRR bgp summary: %w", err)
	}
	var up []netip.Addr
	for _, af := range s {
		for ip, p := range af.Peers {
			if a, err := netip.ParseAddr(ip); err == nil && p.State == "Established" {
				up = append(up, a)
			}
		}
	}
	return sortedUnique(up), nil
}

// parseFRRRoute reads `show ip[v6] route P json`.
func parseFRRRoute(b []byte, prefix netip.Prefix) ([]netip.Addr, error) {
	var s map[string][]struct {
		Selected bool `json:"selected"`
		Nexthops []struct {
			IP     string `json:"ip"`
			Active bool   `json:"active"`
		} `json:"nexthops"`
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse FRR route: %w", err)
	}
	var hops []netip.Addr
	for _, r := range s[prefix.String()] {
		if !r.Selected {
			continue
		}
		for _, nh := range r.Nexthops {
			if a, err := netip.ParseAddr(nh.IP); err == nil && nh.Active {
				hops = append(hops, a)
			}
		}
	}
	return sortedUnique(hops), nil
}

// parseBIRDProtocols reads `show protocols all` and returns the neighbour
// addresses of BGP protocols in state Established.
func parseBIRDProtocols(out string) []netip.Addr {
	var up []netip.Addr
	var established bool
	var neighbor netip.Addr
	flush := func() {
		if established && neighbor.IsValid() {
			up = append(up, neighbor)
		}
		established, neighbor = false, netip.Addr{}
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if line != "" && line[0] != ' ' && line[0] != '\t' {
			flush()
			continue
		}
		f := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(f, "BGP state:"):
			established = strings.TrimSpace(strings.TrimPrefix(f, "BGP state:")) == "Established"
		case strings.HasPrefix(f, "Neighbor address:"):
			neighbor, _ = netip.ParseAddr(strings.TrimSpace(strings.TrimPrefix(f, "Neighbor address:")))
		}
	}
	flush()
	return sortedUnique(up)
}

// parseBIRDRoute reads `show route P` and returns every "via X" next hop.
func parseBIRDRoute(out string) []netip.Addr {
	var hops []netip.Addr
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "via" {
				if a, err := netip.ParseAddr(f[i+1]); err == nil {
					hops = append(hops, a)
				}
			}
		}
	}
	return sortedUnique(hops)
}
