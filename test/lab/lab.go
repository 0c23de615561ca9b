//go:build linux

package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RouterKind selects the routing daemon of the router namespace.
type RouterKind string

const (
	// FRR runs zebra + bgpd (+ bfdd with Options.BFD) (lab-recipes §3.1).
	FRR RouterKind = "frr"
	// BIRD runs BIRD 2 (lab-recipes §3.2).
	BIRD RouterKind = "bird"
	// NoRouter runs no routing daemon (the router still forwards).
	NoRouter RouterKind = "none"
)

// Options configure a lab. The zero value is a 3-node lab with FRR and a
// control plane.
type Options struct {
	// Nodes is the number of node namespaces (default 3, at most MaxNodes).
	Nodes int
	// Router is the routing daemon started with the lab (default FRR).
	Router RouterKind
	// BFD starts bfdd on the router and enables BFD (profile "fast":
	// 100 ms × 3) on the dynamic neighbours (FRR only).
	BFD bool
	// NoControlPlane skips etcd, kube-apiserver, the Node objects, the
	// kube-proxy stand-in and the HTTP servers (BGP/ARP-only labs).
	NoControlPlane bool
	// Prefix names the namespaces (<prefix>-lan, <prefix>-node1, …).
	// Default: "ol" and 6 random hex digits, unique per run.
	Prefix string
	// RunDir holds logs, configs, the kubeconfig and daemon state.
	// Default: <repo>/test/lab/run/<prefix> (or $TMPDIR/openelb-lab/<prefix>
	// outside the repository). Its parents must be traversable by the frr
	// and bird users.
	RunDir string
	// Logf receives progress lines (t.Logf in tests); nil discards them.
	Logf func(format string, args ...any)
}

// Lab is a running lab. Create it with Up (or New in tests) and always
// end it with Down.
type Lab struct {
	Options  Options
	Prefix   string
	RunDir   string
	Topology Topology

	// LAN holds the bridge br0; its ports are named after the hosts.
	LAN    *NS
	Router *NS
	Client *NS
	// K8s runs etcd, kube-apiserver and the controller/operator roles.
	K8s   *NS
	Nodes []*Node

	// Kubeconfig is the admin kubeconfig (server
	// https://198.51.100.2:6443), usable from every lab namespace.
	Kubeconfig string
	// REST, Kube and Clientset reach the apiserver from the harness (they
	// dial through the K8s namespace). Kube knows this project's API types.
	REST      *rest.Config
	Kube      client.Client
	Clientset kubernetes.Interface

	namespaces []*NS
	started    time.Time

	mu        sync.Mutex
	procs     []*Proc
	router    routerDaemon
	kubeProxy *kubeProxy
	stops     []func() // stopped in reverse order at Down
	reaper    *exec.Cmd
	reapIn    io.WriteCloser
	down      bool
}

// Node is one node namespace: a Kubernetes Node with the same name.
type Node struct {
	Host
	// Name is the node name, "node1", ….
	Name string
	NS   *NS
	// Speaker is the speaker process last started on this node
	// (StartSpeaker, StartTestSpeaker); nil when none.
	Speaker *Proc

	lab *Lab
}

// ErrNotRoot is returned by Up when the process is not root.
var ErrNotRoot = errors.New("the network lab needs root (network namespaces, veths, raw sockets)")

func (l *Lab) logf(format string, args ...any) {
	if l.Options.Logf != nil {
		l.Options.Logf(format, args...)
	}
}

// Node returns the node with the given name, or nil.
func (l *Lab) Node(name string) *Node {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Procs returns every process the lab started, in start order.
func (l *Lab) Procs() []*Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Proc(nil), l.procs...)
}

// Start runs a process in one of the lab's namespaces, logging to
// <RunDir>/<name>.log. Down ends it.
func (l *Lab) Start(s ProcSpec) (*Proc, error) {
	if s.Dir == "" {
		s.Dir = l.RunDir
	}
	p, err := startProc(s, filepath.Join(l.RunDir, s.Name+".log"))
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	l.logf("lab: started %s (pid %d) in %s", p.Name, p.PID(), s.NS.Short)
	return p, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Up creates a lab: namespaces and links, the router daemon, and unless
// Options.NoControlPlane, etcd, kube-apiserver (with the CRDs and
// openelb-system namespace), the Node objects, the kube-proxy stand-in and
// the HTTP servers. On error it tears down what it made and returns the
// error together with the lab (for its logs); the caller must not call
// Down then.
func Up(ctx context.Context, o Options) (l *Lab, err error) {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Router == "" {
		o.Router = FRR
	}
	if o.Prefix == "" {
		o.Prefix = "ol" + randomHex(3)
	}
	if err := Preflight(o); err != nil {
		return nil, err
	}
	t, err := Plan(o.Nodes)
	if err != nil {
		return nil, err
	}
	if o.RunDir == "" {
		o.RunDir, err = defaultRunDir(o.Prefix)
		if err != nil {
			return nil, err
		}
	}
	l = &Lab{Options: o, Prefix: o.Prefix, RunDir: o.RunDir, Topology: t, started: time.Now()}
	if err := os.MkdirAll(l.RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("run dir: %w", err)
	}
	// MkdirAll keeps the mode of existing parents; make the chain
	// traversable for frr and bird.
	_ = os.Chmod(l.RunDir, 0o755)
	if err := l.startReaper(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.logf("lab: setup failed, tearing down: %v", err)
			if derr := l.Down(); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	step := time.Now()
	if err := l.createNamespaces(); err != nil {
		return l, err
	}

	if err := l.buildTopology(ctx); err != nil {
		return l, err
	}
	// Veth carrier comes up through the kernel's linkwatch (about 1 s).
	// Neither etcd and kube-apiserver (loopback and the k8s address) nor the
	// router daemons need it to start, so start them meanwhile.
	cpErr := make(chan error, 1)
	if o.NoControlPlane {
		cpErr <- nil
	} else {
		go func() { cpErr <- l.startControlPlane(ctx) }()
	}
	if o.Router != NoRouter {
		if err := l.StartRouter(ctx, o.Router); err != nil {
			<-cpErr
			return l, err
		}
	}
	if err := l.waitCarrier(ctx); err != nil {
		<-cpErr
		return l, err
	}
	l.logf("lab: topology %s with %d nodes up in %v (run dir %s)", l.Prefix, len(l.Nodes), time.Since(step).Round(time.Millisecond), l.RunDir)
	if err := <-cpErr; err != nil {
		return l, err
	}
	if !o.NoControlPlane {
		if err := l.startNodeServices(ctx); err != nil {
			return l, err
		}
	}
	l.logf("lab: %s ready after %v", l.Prefix, time.Since(l.started).Round(time.Millisecond))
	return l, nil
}

// Down ends every process (SIGTERM, then SIGKILL after a grace period),
// deletes every namespace and checks that nothing is left. It keeps the run
// directory (logs); RemoveRunDir deletes it. Down is idempotent.
func (l *Lab) Down() error {
	l.mu.Lock()
	if l.down {
		l.mu.Unlock()
		return nil
	}
	l.down = true
	stops := l.stops
	procs := l.procs
	l.mu.Unlock()
	start := time.Now()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	// Roles and daemons first (they may still talk to the apiserver while
	// they stop), then the disposable control plane.
	var wg sync.WaitGroup
	for _, p := range procs {
		if p.disposable {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p.Terminate(2 * time.Second) {
				l.logf("lab: %s (pid %d) ignored SIGTERM for 2s and was killed", p.Name, p.PID())
			}
		}()
	}
	wg.Wait()
	for _, p := range procs {
		if p.disposable && !p.Exited() {
			_ = p.Kill()
		}
	}
	var errs []error
	for _, n := range l.namespaces {
		n.close()
	}
	for _, n := range l.namespaces {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := deleteNS(n.Name); err != nil {
				l.mu.Lock()
				errs = append(errs, err)
				l.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	l.stopReaper()
	if left := l.Leftovers(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("lab %s left behind: %s", l.Prefix, strings.Join(left, ", ")))
	}
	l.logf("lab: %s down in %v", l.Prefix, time.Since(start).Round(time.Millisecond))
	return errors.Join(errs...)
}

// Leftovers lists what of the lab still exists: namespaces named
// <prefix>-*, and processes the lab started that have not been reaped or
// whose pid still exists (a pid is checked only after its process was
// reaped, so a reused pid may be reported). Empty after a clean Down.
func (l *Lab) Leftovers() []string {
	var left []string
	names, err := listNamespaces(l.Prefix + "-")
	if err != nil {
		left = append(left, "cannot list /run/netns: "+err.Error())
	}
	for _, n := range names {
		left = append(left, "namespace "+n)
	}
	for _, p := range l.Procs() {
		if !p.Exited() {
			left = append(left, fmt.Sprintf("process %s (pid %d) still running", p.Name, p.PID()))
			continue
		}
		if err := syscall.Kill(p.PID(), 0); err == nil && processInLab(p.PID(), l.Prefix) {
			left = append(left, fmt.Sprintf("pid %d (%s) still exists", p.PID(), p.Name))
		}
	}
	sort.Strings(left)
	return left
}

// processInLab reports whether pid's command line looks like one of the
// lab's processes (guards Leftovers against reused pids).
func processInLab(pid int, prefix string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), prefix)
}

// RemoveRunDir deletes the run directory (after a successful run).
func (l *Lab) RemoveRunDir() error { return os.RemoveAll(l.RunDir) }

// startReaper starts a watchdog shell outside the lab that deletes the
// lab's namespaces (killing every process in them by pid) if the harness
// dies without Down: test timeouts, SIGKILL, panics. Down tells it to exit.
func (l *Lab) startReaper() error {
	names := []string{l.Prefix + "-lan", l.Prefix + "-router", l.Prefix + "-k8s", l.Prefix + "-client"}
	for _, n := range l.Topology.Nodes {
		names = append(names, l.Prefix+"-"+n.Short)
	}
	script := `trap "" INT HUP TERM
read -r line
[ "$line" = done ] && exit 0
for ns in "$@"; do
  for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
done
exit 0`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "lab-reaper-" + l.Prefix}, names...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start lab reaper: %w", err)
	}
	l.reaper, l.reapIn = cmd, in
	return nil
}

func (l *Lab) stopReaper() {
	if l.reaper == nil {
		return
	}
	_, _ = io.WriteString(l.reapIn, "done\n")
	_ = l.reapIn.Close()
	done := make(chan struct{})
	go func() { _ = l.reaper.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = l.reaper.Process.Kill()
		<-done
	}
}

func (l *Lab) addStop(f func()) {
	l.mu.Lock()
	l.stops = append(l.stops, f)
	l.mu.Unlock()
}

// RepoRoot finds the repository root (go.mod + PROJECT) at or above the
// working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		_, e1 := os.Stat(filepath.Join(dir, "go.mod"))
		_, e2 := os.Stat(filepath.Join(dir, "PROJECT"))
		if e1 == nil && e2 == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod + PROJECT) not found above the working directory")
		}
		dir = parent
	}
}

func defaultRunDir(prefix string) (string, error) {
	if root, err := RepoRoot(); err == nil {
		return filepath.Join(root, "test", "lab", "run", prefix), nil
	}
	return filepath.Join(os.TempDir(), "openelb-lab", prefix), nil
}

// Preflight checks what Up needs before touching anything: root, /run/netns
// writable, and the tools for the chosen options. The error lists every
// missing piece and how to install it.
func Preflight(o Options) error {
	var missing []string
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	tools := map[string]string{"ip": "iproute2", "ping": "iputils-ping", "arping": "iputils-arping", "ndisc6": "ndisc6"}
	switch o.Router {
	case FRR, "":
		tools["/usr/lib/frr/zebra"] = "frr"
		tools["/usr/lib/frr/bgpd"] = "frr"
		tools["vtysh"] = "frr"
		if o.BFD {
			tools["/usr/lib/frr/bfdd"] = "frr"
		}
	case BIRD:
		tools["bird"] = "bird2"
		tools["birdc"] = "bird2"
	case NoRouter:
	default:
		return fmt.Errorf("lab: unknown router %q (want frr, bird or none)", o.Router)
	}
	for tool, pkg := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", tool, pkg))
		}
	}
	if !o.NoControlPlane {
		bin, err := BinDir()
		if err != nil {
			return err
		}
		for _, b := range []string{"etcd", "kube-apiserver", "kubectl"} {
			if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
				missing = append(missing, fmt.Sprintf("%s (run `make controlplane`)", filepath.Join(bin, b)))
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("lab: missing tools: %s; install them with apt-get install frr bird2 iputils-arping ndisc6 iproute2 iputils-ping (see .ci/run)", strings.Join(missing, ", "))
	}
	return nil
}

// BinDir is where the lab finds kube-apiserver, etcd, kubectl and openelb:
// $LAB_BIN_DIR, else <repo>/bin.
func BinDir() (string, error) {
	if d := os.Getenv("LAB_BIN_DIR"); d != "" {
		return d, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("lab: %w (or set LAB_BIN_DIR)", err)
	}
	return filepath.Join(root, "bin"), nil
}

// DeleteLeftovers deletes every namespace named <prefix>-*, killing the
// processes in them by pid: the manual cleanup after a harness that died
// before its reaper could act (`lab down PREFIX`).
func DeleteLeftovers(prefix string) error {
	if len(prefix) < 3 || strings.ContainsAny(prefix, "/ ") {
		return fmt.Errorf("lab: refusing prefix %q", prefix)
	}
	names, err := listNamespaces(prefix + "-")
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if err := deleteNS(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
