// Package lab is the network lab: a whole openelb installation on one
// machine, in network namespaces, for end-to-end tests (build tag e2e,
// `make test-e2e`) and for `make lab`. It needs root. See docs/lab.md for
// the picture and docs/design/0006-lab.md for the decisions.
//
// # Topology
//
// Up (or New in a test) creates, with a unique prefix P per run:
//
//	P-lan     bridge br0; its ports are named after the hosts (router, k8s, client, node1…)
//	P-router  eth0 198.51.100.1, 2001:db8::1; eth1 198.18.1.1 to the client; FRR or BIRD, AS 64500
//	P-k8s     198.51.100.2: etcd, kube-apiserver :6443, the controller and operator roles
//	P-client  eth0 198.51.100.100; eth1 198.18.1.2; arping, ndisc6, ping, HTTP client
//	P-nodeN   eth0 198.51.100.(10+N), 2001:db8::(10+N), MAC 02:00:00:00:01:(10+N);
//	          a speaker, an HTTP server answering its node name, Service addresses on lo
//
// The client reaches 203.0.113.0/28 and 2001:db8:ffff::/48 (BGP pools)
// through the router and the rest of 203.0.113.0/24 (layer2 and vip
// pools) on the LAN. Nothing is added to the root namespace.
//
// # Control plane
//
// etcd and kube-apiserver from bin/ run in P-k8s (token auth, AlwaysAllow);
// the CRDs of config/crd/bases are installed as they are (no conversion
// webhook until a started operator sets up its own; StartOperator points
// Service openelb-operator-webhook at it), namespace openelb-system exists, and one Node per
// node namespace is registered with its InternalIPs and Ready=True. No
// kube-controller-manager or kubelet runs: conditions stay as the lab sets
// them (SetNodeReady, PatchNodeLabels, PatchNodeAnnotations), and tests
// place endpoints themselves (SetEndpoints). Lab.Kubeconfig works from any
// lab namespace; Lab.Kube, Lab.Clientset and Lab.REST work from the test;
// Lab.Kubectl runs bin/kubectl; ForwardAPIServer gives the host a
// kubeconfig.
//
// A kube-proxy stand-in in the test process mirrors every LoadBalancer
// ingress IP onto lo of every node (externalTrafficPolicy: Local: only
// nodes with a ready endpoint), with arp_ignore=1/arp_announce=2 as
// strictARP sets, and keeps an HTTP server on each node listening on the
// Services' TCP ports (and 80) that answers with the node's name.
//
// # Roles and processes
//
// StartController, StartSpeaker/StartSpeakers and StartOperator run
// bin/openelb (rebuilt with `make build` once per test process unless
// LAB_NO_BUILD=1 or LAB_OPENELB=path) with the flags of
// docs/design/0003 and wait for /healthz; a role that exits with "not
// built yet" yields ErrRoleNotBuilt. The controller runs with
// --webhook-port=0; StartControllerWithWebhooks serves the admission
// webhooks with the operator's certificate instead (on :9444; the
// operator's conversion webhook has :9443) and points the webhook Services
// at them. StartTestSpeaker runs a gobgp-based
// stand-in speaker (test/lab/cmd/testspeaker). Every process runs in the
// foreground as a child of the harness (Proc: PID, Pause, Resume, Kill,
// Terminate, log in the run dir, Tail).
//
// # Helpers
//
//	WaitFor, Poll        bounded polling, never fixed sleeps; Permanent ends a wait at once
//	Measure              time from an event to a condition (poll every 5–10 ms)
//	ClientNeighbor       which MAC the client's neighbour table holds for an IP (NS.Neighbor anywhere)
//	Arping, Ndisc, ResolveMAC, Ping
//	RouterNextHops       next hops of a prefix in the router's kernel FIB
//	BGPNextHops, BGPEstablished, Vtysh, Birdc   the routing daemon's view
//	HTTPGet, Reaches, Spread                    requests from the client
//	LinkDown, LinkUp     cable pull on the bridge port of a host
//	StartRouter, StopRouter   switch between FRR and BIRD in one lab
//
// # Cleanup
//
// Down terminates every process by pid (SIGTERM, then SIGKILL), deletes
// every namespace and reports Leftovers; New registers it with t.Cleanup
// and fails the test if anything is left. A reaper shell outside the lab
// deletes the namespaces (killing what runs in them) if the harness dies
// without Down (test timeout, SIGKILL); DeleteLeftovers (`lab down
// PREFIX`) is the manual last resort. Up cleans up after itself when it
// fails. A lab that cannot run (not root, tools missing: Preflight) fails
// a test under CI=true and skips it otherwise (RequireRunnable).
//
// # Example
//
//	func TestLayer2(t *testing.T) {
//		l := lab.New(t, lab.Options{})
//		ctx := t.Context()
//		if err := l.StartSpeakers(ctx, lab.RoleOptions{}); err != nil { t.Fatal(err) }
//		// create an Eip and a Service with l.Kube, SetEndpoints, then:
//		mac, err := l.ResolveMAC(ctx, ip, 10*time.Second)
//		d, err := lab.Measure(ctx, 10*time.Second, 5*time.Millisecond, l.Node("node1").Speaker.Kill,
//			func(context.Context) (bool, error) { m, err := l.ClientNeighbor(ip); return m.String() != mac.String(), err })
//	}
package lab
