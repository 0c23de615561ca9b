//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/vishvananda/netlink"
)

// kubeProxy is the kube-proxy stand-in: it mirrors the addresses of
// LoadBalancer Services onto each node's lo and keeps an HTTP server per
// node listening on the Services' TCP ports. It runs in the harness
// process (its sockets live in the node namespaces).
type kubeProxy struct {
	lab     *Lab
	factory informers.SharedInformerFactory
	svcs    cache.GenericLister
	slices  cache.GenericLister
	kick    chan struct{}

	mu      sync.Mutex
	managed map[string]map[netip.Addr]bool    // node → addresses we put on lo
	servers map[string]map[int32]*http.Server // node → port → server
	last    ServingPlan
	lastErr error
}

func (l *Lab) startNodeServices(ctx context.Context) error {
	k := &kubeProxy{
		lab:     l,
		factory: informers.NewSharedInformerFactory(l.Clientset, 0),
		kick:    make(chan struct{}, 1),
		managed: map[string]map[netip.Addr]bool{},
		servers: map[string]map[int32]*http.Server{},
	}
	svcInf := k.factory.Core().V1().Services()
	sliceInf := k.factory.Discovery().V1().EndpointSlices()
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { k.trigger() },
		UpdateFunc: func(any, any) { k.trigger() },
		DeleteFunc: func(any) { k.trigger() },
	}
	if _, err := svcInf.Informer().AddEventHandler(h); err != nil {
		return err
	}
	if _, err := sliceInf.Informer().AddEventHandler(h); err != nil {
		return err
	}
	k.svcs = cache.NewGenericLister(svcInf.Informer().GetIndexer(), corev1.Resource("services"))
	k.slices = cache.NewGenericLister(sliceInf.Informer().GetIndexer(), discoveryv1.Resource("endpointslices"))
	stop := make(chan struct{})
	k.factory.Start(stop)
	for typ, ok := range k.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			close(stop)
			return fmt.Errorf("kube-proxy stand-in: %v cache did not sync", typ)
		}
	}
	if err := k.sync(); err != nil {
		close(stop)
		return err
	}
	done := make(chan struct{})
	go k.loop(stop, done)
	l.mu.Lock()
	l.kubeProxy = k
	l.mu.Unlock()
	l.addStop(func() {
		close(stop)
		<-done
		k.factory.Shutdown()
		k.closeServers()
	})
	return nil
}

func (k *kubeProxy) trigger() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

func (k *kubeProxy) loop(stop, done chan struct{}) {
	defer close(done)
	// A periodic pass repairs anything a failed pass left behind.
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-k.kick:
		case <-t.C:
		}
		if err := k.sync(); err != nil {
			k.lab.logf("lab: kube-proxy stand-in: %v", err)
		}
	}
}

// sync computes the plan from the informer caches and applies it.
func (k *kubeProxy) sync() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	svcObjs, err := k.svcs.List(labels.Everything())
	if err != nil {
		return err
	}
	sliceObjs, err := k.slices.List(labels.Everything())
	if err != nil {
		return err
	}
	svcs := make([]corev1.Service, 0, len(svcObjs))
	for _, o := range svcObjs {
		svcs = append(svcs, *o.(*corev1.Service))
	}
	slices := make([]discoveryv1.EndpointSlice, 0, len(sliceObjs))
	for _, o := range sliceObjs {
		slices = append(slices, *o.(*discoveryv1.EndpointSlice))
	}
	nodes := make([]string, len(k.lab.Nodes))
	for i, n := range k.lab.Nodes {
		nodes[i] = n.Name
	}
	plan := PlanServing(svcs, slices, nodes)
	var errs []error
	for _, n := range k.lab.Nodes {
		if err := k.applyAddrs(n, plan.Addrs[n.Name]); err != nil {
			errs = append(errs, err)
		}
		if err := k.applyPorts(n, plan.Ports); err != nil {
			errs = append(errs, err)
		}
	}
	k.last = plan
	k.lastErr = errors.Join(errs...)
	return k.lastErr
}

func loopbackAddrs(n *NS) (netlink.Link, []netip.Addr, error) {
	lo, err := n.nl.LinkByName("lo")
	if err != nil {
		return nil, nil, err
	}
	list, err := n.nl.AddrList(lo, netlink.FAMILY_ALL)
	if err != nil {
		return nil, nil, fmt.Errorf("addresses of lo in %s: %w", n.Short, err)
	}
	var out []netip.Addr
	for _, a := range list {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLoopback() {
			continue
		}
		out = append(out, ip)
	}
	return lo, sortedUnique(out), nil
}

func (k *kubeProxy) applyAddrs(n *Node, want []netip.Addr) error {
	lo, have, err := loopbackAddrs(n.NS)
	if err != nil {
		return err
	}
	var managed []netip.Addr
	for a := range k.managed[n.Name] {
		managed = append(managed, a)
	}
	add, del := diffAddrs(have, want, managed)
	if k.managed[n.Name] == nil {
		k.managed[n.Name] = map[netip.Addr]bool{}
	}
	var errs []error
	for _, a := range add {
		if err := addrAdd(n.NS.nl, lo, a, a.BitLen()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
			continue
		}
		k.managed[n.Name][a] = true
	}
	for _, a := range del {
		if err := n.NS.nl.AddrDel(lo, &netlink.Addr{IPNet: ipnet(a, a.BitLen())}); err != nil {
			errs = append(errs, fmt.Errorf("%s: remove %s from lo: %w", n.Name, a, err))
			continue
		}
		delete(k.managed[n.Name], a)
	}
	// Forget addresses someone else removed.
	for a := range k.managed[n.Name] {
		if !contains(want, a) {
			delete(k.managed[n.Name], a)
		}
	}
	return errors.Join(errs...)
}

func contains(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// nodeHandler answers every request with the node's name.
func nodeHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Lab-Node", name)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Connection", "close")
		fmt.Fprintln(w, name)
	})
}

func (k *kubeProxy) applyPorts(n *Node, ports []int32) error {
	if k.servers[n.Name] == nil {
		k.servers[n.Name] = map[int32]*http.Server{}
	}
	have := k.servers[n.Name]
	var errs []error
	for _, p := range ports {
		if have[p] != nil {
			continue
		}
		ln, err := n.NS.Listen("tcp", fmt.Sprintf("[::]:%d", p))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: HTTP server on port %d: %w", n.Name, p, err))
			continue
		}
		srv := &http.Server{Handler: nodeHandler(n.Name), ReadHeaderTimeout: 5 * time.Second}
		srv.SetKeepAlivesEnabled(false)
		go func() { _ = srv.Serve(ln) }()
		have[p] = srv
	}
	for p, srv := range have {
		if p != DefaultHTTPPort && !containsPort(ports, p) {
			_ = srv.Close()
			delete(have, p)
		}
	}
	return errors.Join(errs...)
}

func containsPort(ps []int32, p int32) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

func (k *kubeProxy) closeServers() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, m := range k.servers {
		for _, srv := range m {
			_ = srv.Close()
		}
	}
}

// SyncKubeProxy runs one pass of the kube-proxy stand-in now (from its
// informer caches, which may trail the apiserver by milliseconds) and
// returns its error.
func (l *Lab) SyncKubeProxy() error {
	l.mu.Lock()
	k := l.kubeProxy
	l.mu.Unlock()
	if k == nil {
		return errors.New("no kube-proxy stand-in (lab without control plane)")
	}
	return k.sync()
}

// LoopbackAddrs returns the non-loopback addresses on a node's lo (what the
// kube-proxy stand-in put there).
func (n *Node) LoopbackAddrs() ([]netip.Addr, error) {
	_, as, err := loopbackAddrs(n.NS)
	return as, err
}
