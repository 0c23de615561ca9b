//go:build linux

package lab

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/openelb/openelb-operator/internal/scheme"
)

// APIServerPort is the kube-apiserver's port on the k8s host (198.51.100.2).
const APIServerPort = 6443

// Namespace is where the lab creates the operands' namespace-scoped
// objects (Secrets, Leases), as the operator would.
const Namespace = "openelb-system"

// APIServerURL is the apiserver's address inside the lab.
func (l *Lab) APIServerURL() string {
	return fmt.Sprintf("https://%s", netip.AddrPortFrom(l.Topology.K8s.IPv4, APIServerPort))
}

func writeServiceAccountKey(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	priv, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: priv}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// startControlPlane runs etcd and kube-apiserver in the k8s namespace
// (lab-recipes §7), writes the kubeconfig, builds the clients, installs the
// CRDs and registers the nodes.
func (l *Lab) startControlPlane(ctx context.Context) error {
	start := time.Now()
	bin, err := BinDir()
	if err != nil {
		return err
	}
	dir := filepath.Join(l.RunDir, "k8s")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := writeServiceAccountKey(dir); err != nil {
		return fmt.Errorf("service account key: %w", err)
	}
	token := randomHex(16)
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(token+",admin,admin,system:masters\n"), 0o600); err != nil {
		return err
	}
	// etcd listens on loopback only: nothing but the apiserver uses it.
	etcd, err := l.Start(ProcSpec{Name: "k8s-etcd", NS: l.K8s, Args: []string{
		filepath.Join(bin, "etcd"), "--name", "lab", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "lab=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level", "warn",
	}, Disposable: true})
	if err != nil {
		return err
	}
	cidrs := make([]string, len(ServiceCIDRs))
	for i, c := range ServiceCIDRs {
		cidrs[i] = c.String()
	}
	k8sIP := l.Topology.K8s.IPv4.String()
	api, err := l.Start(ProcSpec{Name: "k8s-apiserver", NS: l.K8s, Args: []string{
		filepath.Join(bin, "kube-apiserver"), "--etcd-servers", "http://127.0.0.1:2379",
		"--bind-address", k8sIP, "--advertise-address", k8sIP, "--secure-port", fmt.Sprint(APIServerPort),
		"--cert-dir", filepath.Join(dir, "certs"), "--token-auth-file", filepath.Join(dir, "tokens.csv"),
		"--authorization-mode", "AlwaysAllow",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range", strings.Join(cidrs, ","),
		// Webhooks and aggregated APIs are reached at their endpoints'
		// addresses: there is no kube-proxy for ClusterIPs in the lab.
		"--enable-aggregator-routing=true",
		"--enable-priority-and-fairness=false", "--profiling=false",
	}, Disposable: true})
	if err != nil {
		return err
	}
	l.Kubeconfig = filepath.Join(l.RunDir, "kubeconfig")
	if err := writeKubeconfig(l.Kubeconfig, l.APIServerURL(), token); err != nil {
		return err
	}
	l.REST = &rest.Config{
		Host:            l.APIServerURL(),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		Dial:            l.K8s.DialContext,
		WarningHandler:  rest.NoWarnings{},
		QPS:             200,
		Burst:           400,
		Timeout:         30 * time.Second,
	}
	if err := l.waitAPIServer(ctx, token, etcd, api); err != nil {
		return err
	}
	l.logf("lab: kube-apiserver ready after %v", time.Since(start).Round(time.Millisecond))
	if l.Clientset, err = kubernetes.NewForConfig(l.REST); err != nil {
		return err
	}
	if l.Kube, err = client.New(l.REST, client.Options{Scheme: scheme.New()}); err != nil {
		return err
	}
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	if _, err := envtest.InstallCRDs(l.REST, envtest.CRDInstallOptions{
		Paths:              []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfPathMissing: true,
		MaxTime:            30 * time.Second,
		PollInterval:       50 * time.Millisecond,
	}); err != nil {
		return fmt.Errorf("install CRDs: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	if _, err := l.Clientset.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", Namespace, err)
	}
	for _, n := range l.Nodes {
		if err := l.registerNode(ctx, n); err != nil {
			return err
		}
	}
	l.logf("lab: control plane with CRDs and %d Nodes ready after %v", len(l.Nodes), time.Since(start).Round(time.Millisecond))
	return nil
}

func writeKubeconfig(path, server, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["lab"] = &clientcmdapi.Cluster{Server: server, InsecureSkipTLSVerify: true}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["lab"] = &clientcmdapi.Context{Cluster: "lab", AuthInfo: "admin"}
	cfg.CurrentContext = "lab"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

func (l *Lab) waitAPIServer(ctx context.Context, token string, procs ...*Proc) error {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext:     l.K8s.DialContext,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // lab apiserver, self-signed
	}}
	defer hc.CloseIdleConnections()
	return WaitFor(ctx, 60*time.Second, "kube-apiserver /readyz", func(ctx context.Context) (bool, error) {
		for _, p := range procs {
			if p.Exited() {
				return false, Permanent(fmt.Errorf("%s exited: %v\n%s", p.Name, p.ExitErr(), p.Tail(30)))
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.APIServerURL()+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return false, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("readyz %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return true, nil
	})
}

func (l *Lab) registerNode(ctx context.Context, n *Node) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
		corev1.LabelHostname: n.Name,
		corev1.LabelOSStable: "linux",
	}}}
	created, err := l.Clientset.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node %s: %w", n.Name, err)
	}
	now := metav1.Now()
	created.Status = corev1.NodeStatus{
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.IPv4.String()},
			{Type: corev1.NodeInternalIP, Address: n.IPv6.String()},
			{Type: corev1.NodeHostName, Address: n.Name},
		},
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "set by the lab", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
	}
	if _, err := l.Clientset.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node %s status: %w", n.Name, err)
	}
	return nil
}

// Kubectl runs bin/kubectl with the lab's kubeconfig inside the k8s
// namespace and returns its combined output. stdin may be empty.
func (l *Lab) Kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	bin, err := BinDir()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := l.K8s.Command(ctx, append([]string{filepath.Join(bin, "kubectl"), "--kubeconfig", l.Kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// ForwardAPIServer listens on a random port of 127.0.0.1 in the harness's
// own namespace and forwards connections to the apiserver inside the lab,
// so that kubectl on the host can reach it. It writes
// <RunDir>/kubeconfig.host and returns its path. Down stops the forwarder.
func (l *Lab) ForwardAPIServer() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("apiserver forwarder: %w", err)
	}
	l.addStop(func() { ln.Close() })
	target := netip.AddrPortFrom(l.Topology.K8s.IPv4, APIServerPort).String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				u, err := l.K8s.DialContext(ctx, "tcp", target)
				cancel()
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	path := filepath.Join(l.RunDir, "kubeconfig.host")
	b, err := os.ReadFile(filepath.Join(l.RunDir, "k8s", "tokens.csv"))
	if err != nil {
		return "", err
	}
	token := strings.SplitN(string(b), ",", 2)[0]
	if err := writeKubeconfig(path, "https://"+ln.Addr().String(), token); err != nil {
		return "", err
	}
	return path, nil
}

// runHost runs a command in the harness's namespace (build steps).
func runHost(ctx context.Context, dir string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
