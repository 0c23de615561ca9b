//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ErrRoleNotBuilt is returned when a role of bin/openelb exits with "not
// built yet": the role is missing from this build, which is not a failure
// of the lab.
var ErrRoleNotBuilt = errors.New("role not built yet")

// RoleOptions adjust how a role process is started.
type RoleOptions struct {
	// Args are appended to the lab's default flags (a repeated flag wins).
	Args []string
	// Env is added to the process environment.
	Env []string
	// NoWait returns right after the start instead of waiting until the
	// role answers /healthz.
	NoWait bool
	// Timeout bounds the wait for /healthz (default 30 s).
	Timeout time.Duration
}

// Ports of the roles inside their namespaces (docs/design/0003): each
// speaker has its own node namespace; the controller and the operator
// share the k8s namespace, so the operator's ports are moved.
const (
	ControllerHealthPort = 8081
	SpeakerMetricsPort   = 50053
	OperatorHealthPort   = 18081
)

var (
	buildMu sync.Mutex
	built   = map[string]bool{} // binaries built by this process
)

// OpenELBBinary returns the openelb binary the roles run: $LAB_OPENELB when
// set; else <bin>/openelb, first rebuilt with `make build` (serialised
// between processes with a lock file; a no-op when up to date) unless
// LAB_NO_BUILD=1.
func OpenELBBinary(ctx context.Context) (string, error) {
	if p := os.Getenv("LAB_OPENELB"); p != "" {
		return p, nil
	}
	bin, err := BinDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(bin, "openelb")
	if os.Getenv("LAB_NO_BUILD") == "1" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("%s missing and LAB_NO_BUILD=1: run `make build`", path)
		}
		return path, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return path, withBuildLock(bin, path, func() error {
		_, err := runHost(ctx, root, "make", "--no-print-directory", "-s", "build")
		return err
	})
}

// TestSpeakerBinary builds test/lab/cmd/testspeaker into <bin>/testspeaker
// (under the same lock; a no-op when up to date) and returns its path.
func TestSpeakerBinary(ctx context.Context) (string, error) {
	bin, err := BinDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(bin, "testspeaker")
	if os.Getenv("LAB_NO_BUILD") == "1" {
		return path, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return path, withBuildLock(bin, path, func() error {
		_, err := runHost(ctx, root, "go", "build", "-o", path, "./test/lab/cmd/testspeaker")
		return err
	})
}

// withBuildLock runs build once per process for target, holding a lock
// file in dir so that parallel test processes do not build at once.
func withBuildLock(dir, target string, build func() error) error {
	buildMu.Lock()
	defer buildMu.Unlock()
	if built[target] {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lf, err := os.OpenFile(filepath.Join(dir, ".lab-build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("build lock: %w", err)
	}
	defer func() { _ = unix.Flock(int(lf.Fd()), unix.LOCK_UN) }()
	if err := build(); err != nil {
		return err
	}
	built[target] = true
	return nil
}

// SpeakerKeyFile is the speakers' shared liveness key (32 random bytes),
// also stored in Secret openelb-speaker-key (key "key") in Namespace.
func (l *Lab) SpeakerKeyFile(ctx context.Context) (string, error) {
	path := filepath.Join(l.RunDir, "speaker.key")
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	key := []byte(randomHex(16))
	if l.Clientset != nil {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "openelb-speaker-key", Namespace: Namespace}, Data: map[string][]byte{"key": key}}
		got, err := l.Clientset.CoreV1().Secrets(Namespace).Create(ctx, sec, metav1.CreateOptions{})
		switch {
		case apierrors.IsAlreadyExists(err):
			if got, err = l.Clientset.CoreV1().Secrets(Namespace).Get(ctx, sec.Name, metav1.GetOptions{}); err != nil {
				return "", err
			}
			key = got.Data["key"]
		case err != nil:
			return "", fmt.Errorf("speaker key secret: %w", err)
		}
	}
	return path, os.WriteFile(path, key, 0o600)
}

// StartController runs `openelb controller` in the k8s namespace with
// --webhook-port=0 (the lab reaches no Service ClusterIPs, and admission
// is proved by the envtest suites), and waits for /healthz.
func (l *Lab) StartController(ctx context.Context, o RoleOptions) (*Proc, error) {
	args := []string{"controller", "--kubeconfig", l.Kubeconfig, "--namespace", Namespace,
		"--log-format", "console", "--webhook-port=0", "--metrics-bind-address", ":50052",
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", ControllerHealthPort)}
	return l.startRole(ctx, "k8s-controller", l.K8s, ControllerHealthPort, args, o)
}

// OperandImage is the operand image the lab's operator renders into its
// Deployment and DaemonSet; nothing pulls or runs it.
const OperandImage = "ghcr.io/openelb/openelb-operator:lab"

// StartOperator runs `openelb operator` in the k8s namespace. It only
// manages API objects here: the Deployment and DaemonSet it renders (with
// OperandImage) never run (no kubelet); the lab runs the operands as
// processes instead. When the operator serves the CRD conversion webhook
// (--webhook-port), it gets a private certificate directory and Service
// openelb-operator-webhook is pointed at it (198.51.100.2:9443).
func (l *Lab) StartOperator(ctx context.Context, o RoleOptions) (*Proc, error) {
	args := []string{"operator", "--kubeconfig", l.Kubeconfig, "--namespace", Namespace,
		"--log-format", "console", "--metrics-bind-address", "0",
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", OperatorHealthPort)}
	bin, err := OpenELBBinary(ctx)
	if err != nil {
		return nil, err
	}
	if roleHasFlag(ctx, bin, "operator", "--webhook-port") {
		args = append(args, fmt.Sprintf("--webhook-port=%d", OperatorWebhookPort),
			"--webhook-cert-dir="+filepath.Join(l.RunDir, "operator-certs"))
		if err := l.ensureOperatorWebhookService(ctx); err != nil {
			return nil, err
		}
	}
	o.Env = append([]string{"RELATED_IMAGE_OPENELB=" + OperandImage, "OPERATOR_NAMESPACE=" + Namespace}, o.Env...)
	return l.startRole(ctx, "k8s-operator", l.K8s, OperatorHealthPort, args, o)
}

// roleHasFlag reports whether `<bin> <role> --help` lists flag (the lab
// follows the roles as their flags appear).
func roleHasFlag(ctx context.Context, bin, role, flag string) bool {
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, _ := runHost(hctx, "", bin, role, "--help")
	return strings.Contains(out, flag+" ") || strings.Contains(out, flag+"=")
}

// StartSpeaker runs `openelb speaker --node-name <node>` in the node's
// namespace (layer2 and BGP enabled, the shared key from SpeakerKeyFile,
// its own --run-dir) and waits for /healthz on the metrics port. The
// process becomes node.Speaker.
func (l *Lab) StartSpeaker(ctx context.Context, node string, o RoleOptions) (*Proc, error) {
	n := l.Node(node)
	if n == nil {
		return nil, fmt.Errorf("no node %q", node)
	}
	key, err := l.SpeakerKeyFile(ctx)
	if err != nil {
		return nil, err
	}
	runDir := filepath.Join(l.RunDir, node+"-speaker")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	args := []string{"speaker", "--kubeconfig", l.Kubeconfig, "--namespace", Namespace, "--node-name", node,
		"--log-format", "console", "--enable-layer2=true", "--enable-bgp=true",
		"--liveness-key-file", key, "--run-dir", runDir,
		"--metrics-bind-address", fmt.Sprintf(":%d", SpeakerMetricsPort)}
	p, err := l.startRole(ctx, node+"-speaker", n.NS, SpeakerMetricsPort, args, o)
	if p != nil {
		l.mu.Lock()
		n.Speaker = p
		l.mu.Unlock()
	}
	return p, err
}

// StartSpeakers starts a speaker on every node (in parallel) and waits for
// all of them.
func (l *Lab) StartSpeakers(ctx context.Context, o RoleOptions) error {
	errs := make([]error, len(l.Nodes))
	var wg sync.WaitGroup
	for i, n := range l.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = l.StartSpeaker(ctx, n.Name, o)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (l *Lab) startRole(ctx context.Context, name string, ns *NS, healthPort int, args []string, o RoleOptions) (*Proc, error) {
	bin, err := OpenELBBinary(ctx)
	if err != nil {
		return nil, err
	}
	if err := probeRole(ctx, ns, bin, args[0]); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p, err := l.Start(ProcSpec{Name: name, NS: ns, Args: append(append([]string{bin}, args...), o.Args...), Env: o.Env})
	if err != nil {
		return nil, err
	}
	if o.NoWait {
		return p, nil
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: ns.DialContext, DisableKeepAlives: true}}
	url := "http://" + netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(healthPort)).String() + "/healthz"
	err = WaitFor(ctx, timeout, name+" /healthz", func(ctx context.Context) (bool, error) {
		if p.Exited() {
			return false, Permanent(roleExitError(p))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("healthz: status %d", resp.StatusCode)
	})
	if err != nil {
		return p, err
	}
	return p, nil
}

var (
	probeMu sync.Mutex
	probed  = map[string]error{} // "<binary> <role>" → probe result
)

// probeRole runs `<bin> <role>` without flags once per process: a role
// missing from the build exits at once with "not built yet" (before it
// would reject the lab's flags), while a built role fails on its missing
// configuration or keeps running (it is killed after 3 s).
func probeRole(ctx context.Context, ns *NS, bin, role string) error {
	key := bin + " " + role
	probeMu.Lock()
	defer probeMu.Unlock()
	if err, ok := probed[key]; ok {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cmd := ns.Command(pctx, bin, role)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=/nonexistent", "KUBECONFIG=/nonexistent"}
	out, _ := cmd.CombinedOutput()
	var err error
	if strings.Contains(string(out), "not built yet") {
		err = fmt.Errorf("%w (%s)", ErrRoleNotBuilt, lastLine(string(out)))
	}
	probed[key] = err
	return err
}

func roleExitError(p *Proc) error {
	if p.LogContains("not built yet") {
		return fmt.Errorf("%s: %w (%s)", p.Name, ErrRoleNotBuilt, lastLine(p.Tail(3)))
	}
	return fmt.Errorf("%s exited: %v\n%s", p.Name, p.ExitErr(), p.Tail(30))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// TestSpeakerOptions configure a test BGP speaker (test/lab/cmd/testspeaker,
// gobgp v3.37.0), a stand-in for the product's speaker in lab self-tests.
type TestSpeakerOptions struct {
	// ASN is the speaker's AS (default 64510 + node index, e.g. 64511).
	ASN uint32
	// Prefixes are announced with the node's own address as next hop.
	// IPv4 prefixes go over an IPv4 session to the router, IPv6 prefixes
	// over an IPv6 session (a second process is not needed).
	Prefixes []netip.Prefix
	// HoldTime and Keepalive in seconds (default 3 and 1).
	HoldTime, Keepalive int
}

// StartTestSpeaker runs the test BGP speaker on a node; it dials the
// router (it never listens) and becomes node.Speaker.
func (l *Lab) StartTestSpeaker(ctx context.Context, node string, o TestSpeakerOptions) (*Proc, error) {
	n := l.Node(node)
	if n == nil {
		return nil, fmt.Errorf("no node %q", node)
	}
	bin, err := TestSpeakerBinary(ctx)
	if err != nil {
		return nil, err
	}
	if o.ASN == 0 {
		idx, _ := strconv.Atoi(strings.TrimPrefix(node, "node"))
		o.ASN = uint32(64510 + idx)
	}
	if o.HoldTime == 0 {
		o.HoldTime = 3
	}
	if o.Keepalive == 0 {
		o.Keepalive = 1
	}
	args := []string{bin, "-asn", fmt.Sprint(o.ASN), "-router-id", n.IPv4.String(),
		"-peer-as", fmt.Sprint(RouterASN), "-hold", fmt.Sprint(o.HoldTime), "-keepalive", fmt.Sprint(o.Keepalive)}
	var v4, v6 bool
	for _, p := range o.Prefixes {
		args = append(args, "-prefix", p.String())
		v4 = v4 || p.Addr().Is4()
		v6 = v6 || p.Addr().Is6()
	}
	if v4 || !v6 {
		args = append(args, "-peer", l.Topology.Router.IPv4.String(), "-nexthop", n.IPv4.String())
	}
	if v6 {
		args = append(args, "-peer6", l.Topology.Router.IPv6.String(), "-nexthop6", n.IPv6.String())
	}
	p, err := l.Start(ProcSpec{Name: node + "-testspeaker", NS: n.NS, Args: args})
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	n.Speaker = p
	l.mu.Unlock()
	return p, nil
}
