package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Service builders for the stories.

type svcOpt func(*Service)

func sv(key string, opts ...svcOpt) Service {
	ns, name, _ := strings.Cut(key, "/")
	s := Service{Key: ServiceKey{ns, name}, Ports: []Port{{"TCP", 80}}}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func fams(fs ...Family) svcOpt {
	return func(s *Service) {
		s.Families = nil
		for _, f := range fs {
			s.Families = append(s.Families, FamilyRequest{Family: f})
		}
	}
}

// prefer: PreferDualStack with primary family f.
func prefer(f Family) svcOpt {
	other := IPv6
	if f == IPv6 {
		other = IPv4
	}
	return func(s *Service) {
		s.Families = []FamilyRequest{{Family: f}, {Family: other, Optional: true}}
	}
}

func eips(names ...string) svcOpt { return func(s *Service) { s.Eips = names } }

func req(addrs ...string) svcOpt {
	return func(s *Service) {
		s.Addrs = nil
		for _, a := range addrs {
			s.Addrs = append(s.Addrs, netip.MustParseAddr(a))
		}
	}
}

func ports(ps ...string) svcOpt {
	return func(s *Service) {
		s.Ports = nil
		for _, p := range ps {
			proto, num, _ := strings.Cut(p, "/")
			n, _ := strconv.Atoi(num)
			s.Ports = append(s.Ports, Port{proto, int32(n)})
		}
	}
}

func local() svcOpt                       { return func(s *Service) { s.Local = true } }
func key(k string) svcOpt                 { return func(s *Service) { s.SharingKey = k } }
func nsLabels(l map[string]string) svcOpt { return func(s *Service) { s.NamespaceLabels = l } }
func mr(s string) Range                   { r, err := ParseRange(s); must(err); return r }
func must(err error) {
	if err != nil {
		panic(err)
	}
}

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// pl builds a pool; an empty address builds only a name (for status and
// remove steps).
func pl(name, addr string, opts ...func(*Pool)) Pool {
	p := Pool{Name: name, Created: t0}
	if addr != "" {
		p.Range = mr(addr)
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

func def(p *Pool)                         { p.Default = true }
func disabled(p *Pool)                    { p.Disabled = true }
func deleting(p *Pool)                    { p.Deleting = true }
func prio(n int) func(*Pool)              { return func(p *Pool) { p.Priority = n } }
func bound(ns ...string) func(*Pool)      { return func(p *Pool) { p.Namespaces = ns } }
func created(d time.Duration) func(*Pool) { return func(p *Pool) { p.Created = t0.Add(d) } }
func selector(l map[string]string) func(*Pool) {
	return func(p *Pool) { p.NamespaceSelector = l }
}

// step is one operation of a story.
type step struct {
	desc string
	op   string // pool, remove, assign, commit, release, restore, status
	pool Pool
	svc  Service
	// addrs: for assign, the expected result; for commit and restore, the
	// input.
	addrs    []string
	hints    []string
	wantErr  *Error // reason sentinel, nil for success
	errText  string // substring of the error
	noCommit bool   // assign: do not Commit the result (the write failed)
	// status checks
	usage    int
	occupied bool
	used     map[string]string
	outside  []string
}

func runStory(t *testing.T, o Options, steps []step) *Allocator {
	t.Helper()
	a := New(o)
	for i, s := range steps {
		name := fmt.Sprintf("%02d %s %s", i, s.op, s.desc)
		switch s.op {
		case "pool":
			a.SetPool(s.pool)
		case "remove":
			a.RemovePool(s.pool.Name)
		case "assign":
			got, err := a.Assign(s.svc)
			checkErr(t, name, err, s.wantErr, s.errText)
			if g := addrStrings(got); !slices.Equal(g, s.addrs) {
				t.Fatalf("%s: Assign(%s) = %v, want %v (err %v)", name, s.svc.Key, g, s.addrs, err)
			}
			if !s.noCommit {
				var w []netip.Addr
				for _, x := range got {
					w = append(w, x.Addr)
				}
				a.Commit(s.svc.Key, w)
			}
		case "commit":
			a.Commit(s.svc.Key, parseAddrs(s.addrs))
		case "release":
			a.Release(s.svc.Key)
		case "restore":
			err := a.Restore(s.svc, parseAddrs(s.addrs), s.hints)
			checkErr(t, name, err, s.wantErr, s.errText)
		case "status":
			st, ok := a.PoolStatus(s.pool.Name, 1000)
			if !ok {
				t.Fatalf("%s: pool %s unknown", name, s.pool.Name)
			}
			if st.Usage != s.usage || st.Occupied != s.occupied {
				t.Fatalf("%s: usage %d occupied %v, want %d %v", name, st.Usage, st.Occupied, s.usage, s.occupied)
			}
			if s.used != nil {
				got := map[string]string{}
				for _, u := range st.Used {
					got[u.Addr.String()] = u.HoldersString()
				}
				if fmt.Sprint(got) != fmt.Sprint(s.used) {
					t.Fatalf("%s: used %v, want %v", name, got, s.used)
				}
			}
			var out []string
			for _, x := range st.OutOfRange {
				out = append(out, x.String())
			}
			if !slices.Equal(out, s.outside) {
				t.Fatalf("%s: out of range %v, want %v", name, out, s.outside)
			}
		default:
			t.Fatalf("unknown op %q", s.op)
		}
		checkInvariants(t, name, a)
	}
	return a
}

func checkErr(t *testing.T, name string, err error, want *Error, text string) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", name, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: error %v, want reason %s", name, err, want.Reason)
	case text != "" && (err == nil || !strings.Contains(err.Error(), text)):
		t.Fatalf("%s: error %v, want text %q", name, err, text)
	}
}

func addrStrings(as []Assigned) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Addr.String())
	}
	return out
}

func parseAddrs(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// checkInvariants fails when the allocator's indexes disagree: an address in
// use is free in a pool, two holders of an address may not share it, or a
// pool's held set differs from the addresses recorded for it.
func checkInvariants(t *testing.T, name string, a *Allocator) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for addr, as := range a.addrs {
		if len(as.owners) == 0 {
			t.Fatalf("%s: %s recorded without holders", name, addr)
		}
		for _, p := range a.pools {
			if p.isFree(addr) {
				t.Fatalf("%s: %s in use but free in pool %s", name, addr, p.cfg.Name)
			}
		}
		for i, x := range as.owners {
			hasBinding := slices.ContainsFunc(x.binds, func(b *binding) bool { return b.addr == addr })
			if !hasBinding {
				t.Fatalf("%s: %s lists %s as holder without binding", name, addr, x.svc.Key)
			}
			for _, y := range as.owners[:i] {
				wantX := slices.ContainsFunc(x.binds, func(b *binding) bool { return b.addr == addr && b.wanted })
				wantY := slices.ContainsFunc(y.binds, func(b *binding) bool { return b.addr == addr && b.wanted })
				_, px := a.pending[x.svc.Key]
				_, py := a.pending[y.svc.Key]
				// A pending holder is rechecked (and loses the address) on
				// its next Assign.
				if wantX && wantY && !px && !py {
					if err := CanShare(&x.svc, &y.svc, a.opts.Isolation); err != nil {
						t.Fatalf("%s: %s shared by incompatible %s and %s: %v", name, addr, x.svc.Key, y.svc.Key, err)
					}
				}
			}
		}
		if p := a.pools[as.pool]; p != nil && !p.held.Has(addr) {
			t.Fatalf("%s: %s not in held set of pool %s", name, addr, as.pool)
		}
	}
	for _, p := range a.pools {
		p.held.Ascend(func(addr netip.Addr) bool {
			if as := a.addrs[addr]; as == nil || as.pool != p.cfg.Name {
				t.Fatalf("%s: pool %s holds %s which is not recorded for it", name, p.cfg.Name, addr)
			}
			return true
		})
	}
	for k, st := range a.svcs {
		for _, b := range st.binds {
			if as := a.addrs[b.addr]; as == nil || !slices.Contains(as.owners, st) {
				t.Fatalf("%s: %s has binding %s not recorded", name, k, b.addr)
			}
		}
	}
}

// TestOpenELBIPAM ports the cases of OpenELB's pkg/controllers/ipam
// ipam_test.go ("IPAM" suite) with this project's address order.
func TestOpenELBIPAM(t *testing.T) {
	steps := []step{
		{desc: "Add Eip", op: "pool", pool: pl("testeip1", "192.168.1.0/24")},
		{desc: "Add Eip: usage 0, not occupied", op: "status", pool: pl("testeip1", "192.168.1.0/24"), usage: 0},
		{desc: "eip not enabled", op: "pool", pool: pl("testeip1", "192.168.1.0/24", disabled)},
		{desc: "eip not enabled: no address", op: "assign", svc: sv("default/testsvc", req("192.168.1.1")), wantErr: ErrUnavailable, errText: "no available eip was found containing the ip:[192.168.1.1]"},
		{desc: "enable again", op: "pool", pool: pl("testeip1", "192.168.1.0/24")},
		{desc: "Specify IP address", op: "assign", svc: sv("default/testsvc255", req("192.168.1.255")), addrs: []string{"192.168.1.255"}},
		{desc: "The address should be the same if it is reassigned using the same key.", op: "assign", svc: sv("default/testsvc255", eips("testeip1")), addrs: []string{"192.168.1.255"}},
		{op: "status", pool: pl("testeip1", ""), usage: 1},
	}
	// Assigning ip addresses cyclically, knowing that eip is running out:
	// .1 to .254 first, then .0 (OpenELB handed out .0 first).
	for i := 1; i <= 254; i++ {
		steps = append(steps, step{desc: "cyclic", op: "assign", svc: sv(fmt.Sprintf("default/testsvc%d", i), eips("testeip1")), addrs: []string{fmt.Sprintf("192.168.1.%d", i)}})
	}
	steps = append(steps,
		step{desc: "cyclic: .0 last", op: "assign", svc: sv("default/testsvc0", eips("testeip1")), addrs: []string{"192.168.1.0"}},
		step{desc: "eip is full", op: "status", pool: pl("testeip1", ""), usage: 256, occupied: true},
		step{desc: "eip is full", op: "assign", svc: sv("default/testsvc256", eips("testeip1")), wantErr: ErrExhausted, errText: "Eip testeip1 has no free address"},
	)
	// unAssign ip
	for i := 0; i <= 254; i++ {
		steps = append(steps, step{desc: "unAssign ip", op: "release", svc: sv(fmt.Sprintf("default/testsvc%d", i))})
	}
	steps = append(steps,
		step{desc: "unAssign ip: only .255 left", op: "status", pool: pl("testeip1", ""), usage: 1, used: map[string]string{"192.168.1.255": "default/testsvc255"}},
		step{desc: "lowest free again", op: "assign", svc: sv("default/new"), addrs: nil, wantErr: ErrNoEip, errText: "no available default eip found"},
		step{desc: "lowest free again", op: "assign", svc: sv("default/new", eips("testeip1")), addrs: []string{"192.168.1.1"}},
	)
	runStory(t, Options{}, steps)
}

// TestOpenELBAssignIPV6 ports OpenELB's TestManager_AssignIPV6 cases.
func TestOpenELBAssignIPV6(t *testing.T) {
	eip := pl("eip", "2001:0db8::0/120")
	v6 := fams(IPv6)
	tests := []struct {
		name  string
		steps []step
	}{
		{"eip not found", []step{
			{op: "pool", pool: eip},
			{op: "assign", svc: sv("default/svc", v6, eips("xx")), wantErr: ErrNoEip, errText: "Eip xx not found"},
		}},
		{"allocate from eip 1 - static ip", []step{
			{op: "pool", pool: eip},
			{op: "assign", svc: sv("default/svc", v6, eips("eip"), req("2001:0db8::f")), addrs: []string{"2001:db8::f"}},
		}},
		{"allocate from eip 2 - auto", []step{
			{op: "pool", pool: eip},
			{op: "assign", svc: sv("default/svc", v6, eips("eip")), addrs: []string{"2001:db8::"}},
		}},
		{"no avliable eip 1 - eip is deleting", []step{
			{op: "pool", pool: pl("eip", "2001:0db8::0/120", deleting)},
			{op: "assign", svc: sv("default/svc", v6, eips("eip")), wantErr: ErrUnavailable, errText: "being deleted"},
		}},
		{"no avliable eip 2 - eip is disabled", []step{
			{op: "pool", pool: pl("eip", "2001:0db8::0/120", disabled)},
			{op: "assign", svc: sv("default/svc", v6, eips("eip")), wantErr: ErrUnavailable, errText: "disabled"},
		}},
		{"no avliable eip 3 - out of range", []step{
			{op: "pool", pool: eip},
			{op: "assign", svc: sv("default/svc", v6, eips("eip"), req("2001:0db8::100")), wantErr: ErrInvalid, errText: "not in Eip eip"},
		}},
		{"no avliable eip 4 - ippool is full", []step{
			{op: "pool", pool: pl("eip-full", "2001:0db8::100-2001:0db8::101")},
			{op: "restore", svc: sv("default/test0", v6), addrs: []string{"2001:db8::100"}},
			{op: "restore", svc: sv("default/test1", v6), addrs: []string{"2001:db8::101"}},
			{op: "assign", svc: sv("default/svc", v6, eips("eip-full")), wantErr: ErrExhausted},
		}},
		{"Allocation records that already exist - share address", []step{
			{op: "pool", pool: eip},
			{op: "restore", svc: sv("default/test", v6, ports("TCP/443")), addrs: []string{"2001:db8::1"}},
			{op: "assign", svc: sv("default/svc", v6, eips("eip"), req("2001:0db8::1")), addrs: []string{"2001:db8::1"}},
			{op: "status", pool: eip, usage: 1, used: map[string]string{"2001:db8::1": "default/test;default/svc"}},
		}},
		{"Allocation records that already exist - return records", []step{
			{op: "pool", pool: eip},
			{op: "restore", svc: sv("default/svc", v6), addrs: []string{"2001:db8::80"}},
			{op: "assign", svc: sv("default/svc", v6, eips("eip")), addrs: []string{"2001:db8::80"}},
		}},
		{"Allocation records that already exist but specify a different IP", []step{
			{op: "pool", pool: eip},
			{op: "restore", svc: sv("default/svc", v6), addrs: []string{"2001:db8::"}},
			{op: "assign", svc: sv("default/svc", v6, eips("eip"), req("2001:0db8::1")), addrs: []string{"2001:db8::1"}},
			{op: "status", pool: eip, usage: 1, used: map[string]string{"2001:db8::1": "default/svc"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runStory(t, Options{}, tt.steps) })
	}
}

func TestStories(t *testing.T) {
	v4 := fams(IPv4)
	v6 := fams(IPv6)
	tests := []struct {
		name  string
		opts  Options
		steps []step
	}{
		{name: ".0 and .255 are handed out last, across a /23", steps: []step{
			{op: "pool", pool: pl("p", "203.0.113.254-203.0.114.1", def)},
			{op: "assign", svc: sv("a/1"), addrs: []string{"203.0.113.254"}},
			{op: "assign", svc: sv("a/2"), addrs: []string{"203.0.114.1"}},
			{op: "assign", svc: sv("a/3"), addrs: []string{"203.0.113.255"}},
			{op: "assign", svc: sv("a/4"), addrs: []string{"203.0.114.0"}},
			{op: "assign", svc: sv("a/5"), wantErr: ErrExhausted},
			{desc: "a freed inner address comes before free edges", op: "release", svc: sv("a/3")},
			{op: "release", svc: sv("a/1")},
			{op: "assign", svc: sv("a/6"), addrs: []string{"203.0.113.254"}},
			{op: "assign", svc: sv("a/7"), addrs: []string{"203.0.113.255"}},
		}},
		{name: "a single .0 address is allocatable", steps: []step{
			{op: "pool", pool: pl("p", "203.0.113.0", def)},
			{op: "assign", svc: sv("a/1"), addrs: []string{"203.0.113.0"}},
			{op: "status", pool: pl("p", "203.0.113.0"), usage: 1, occupied: true},
		}},
		{name: "IPv6 /64: lowest first, huge pool never full", steps: []step{
			{op: "pool", pool: pl("v6", "2001:db8:1::/64", def)},
			{op: "assign", svc: sv("a/1", v6), addrs: []string{"2001:db8:1::"}},
			{op: "assign", svc: sv("a/2", v6), addrs: []string{"2001:db8:1::1"}},
			{op: "assign", svc: sv("a/3", v6, req("2001:db8:1::ffff:ffff:ffff:ffff")), addrs: []string{"2001:db8:1:0:ffff:ffff:ffff:ffff"}},
			{op: "release", svc: sv("a/1")},
			{op: "assign", svc: sv("a/4", v6), addrs: []string{"2001:db8:1::"}},
			{op: "status", pool: pl("v6", ""), usage: 3},
		}},
		{name: "SingleStack follows ipFamilies", steps: []step{
			{op: "pool", pool: pl("v4", "203.0.113.0/24", def)},
			{op: "pool", pool: pl("v6", "2001:db8::/120", def)},
			{op: "assign", svc: sv("a/four", v4), addrs: []string{"203.0.113.1"}},
			{op: "assign", svc: sv("a/six", v6), addrs: []string{"2001:db8::"}},
			{desc: "a requested address of the other family is invalid", op: "assign", svc: sv("a/bad", v4, req("2001:db8::9")), wantErr: ErrInvalid, errText: "ipFamilies are [IPv4]"},
		}},
		{name: "dual-stack: RequireDualStack gets both families or nothing new", steps: []step{
			{op: "pool", pool: pl("v4", "203.0.113.0/24", def)},
			{op: "assign", svc: sv("a/ds", fams(IPv4, IPv6)), wantErr: ErrNoEip, errText: "no available IPv6 eip found"},
			{desc: "the IPv4 address was not kept", op: "status", pool: pl("v4", ""), usage: 0},
			{op: "pool", pool: pl("v6", "2001:db8::/64", def)},
			{op: "assign", svc: sv("a/ds", fams(IPv4, IPv6)), addrs: []string{"203.0.113.1", "2001:db8::"}},
			{desc: "IPv6 primary orders the ingress", op: "assign", svc: sv("a/ds6", fams(IPv6, IPv4)), addrs: []string{"2001:db8::1", "203.0.113.2"}},
			{desc: "back to SingleStack IPv4 releases the IPv6 address", op: "assign", svc: sv("a/ds", v4), addrs: []string{"203.0.113.1"}},
			{op: "status", pool: pl("v6", ""), usage: 1},
		}},
		{name: "dual-stack: PreferDualStack takes what exists", steps: []step{
			{op: "pool", pool: pl("v4", "203.0.113.0/24", def)},
			{op: "assign", svc: sv("a/p", prefer(IPv4)), addrs: []string{"203.0.113.1"}},
			{op: "pool", pool: pl("v6", "2001:db8::/64", def)},
			{desc: "an IPv6 pool appears: the IPv4 address stays, IPv6 is added", op: "assign", svc: sv("a/p", prefer(IPv4)), addrs: []string{"203.0.113.1", "2001:db8::"}},
			{desc: "requested addresses per family", op: "assign", svc: sv("a/q", prefer(IPv4), req("2001:db8::7", "203.0.113.7")), addrs: []string{"203.0.113.7", "2001:db8::7"}},
			{desc: "one Eip per family by name", op: "assign", svc: sv("a/r", fams(IPv4, IPv6), eips("v6", "v4")), addrs: []string{"203.0.113.2", "2001:db8::1"}},
		}},
		{name: "sharing within a namespace: ports and externalTrafficPolicy", steps: []step{
			{op: "pool", pool: pl("p", "203.0.113.0/24")},
			{op: "assign", svc: sv("ns/a", req("203.0.113.10"), ports("TCP/80")), addrs: []string{"203.0.113.10"}},
			{desc: "different port: shared", op: "assign", svc: sv("ns/b", req("203.0.113.10"), ports("TCP/443")), addrs: []string{"203.0.113.10"}},
			{desc: "same port, other protocol: shared", op: "assign", svc: sv("ns/c", req("203.0.113.10"), ports("UDP/80")), addrs: []string{"203.0.113.10"}},
			{desc: "clashing port: refused", op: "assign", svc: sv("ns/d", req("203.0.113.10"), ports("TCP/443")), wantErr: ErrConflict, errText: "both use port TCP/443"},
			{desc: "ETP differs: refused", op: "assign", svc: sv("ns/e", req("203.0.113.10"), ports("TCP/8080"), local()), wantErr: ErrConflict, errText: "externalTrafficPolicy"},
			{desc: "other namespace without key: refused", op: "assign", svc: sv("other/f", req("203.0.113.10"), ports("TCP/8081")), wantErr: ErrConflict, errText: "different namespaces"},
			{op: "status", pool: pl("p", ""), usage: 1, used: map[string]string{"203.0.113.10": "ns/a;ns/b;ns/c"}},
			{desc: "releasing one holder keeps the address", op: "release", svc: sv("ns/a")},
			{op: "status", pool: pl("p", ""), usage: 1, used: map[string]string{"203.0.113.10": "ns/b;ns/c"}},
			{desc: "different keys in one namespace: refused", op: "assign", svc: sv("ns/g", req("203.0.113.20"), key("x")), addrs: []string{"203.0.113.20"}},
			{op: "assign", svc: sv("ns/h", req("203.0.113.20"), key("y"), ports("TCP/81")), wantErr: ErrConflict, errText: "different openelb.kubesphere.io/allow-shared-ip keys"},
		}},
		{name: "sharing across namespaces needs the same key", steps: []step{
			{op: "pool", pool: pl("p", "203.0.113.0/24")},
			{op: "assign", svc: sv("ns1/a", req("203.0.113.10"), key("k")), addrs: []string{"203.0.113.10"}},
			{op: "assign", svc: sv("ns2/b", req("203.0.113.10"), key("other"), ports("TCP/81")), wantErr: ErrConflict},
			{op: "assign", svc: sv("ns2/b", req("203.0.113.10"), key("k"), ports("TCP/81")), addrs: []string{"203.0.113.10"}},
			{op: "assign", svc: sv("ns3/c", req("203.0.113.10"), key("k"), ports("TCP/80")), wantErr: ErrConflict, errText: "port TCP/80"},
		}},
		{name: "isolation: sharing needs a key even in one namespace", opts: Options{Isolation: true}, steps: []step{
			{op: "pool", pool: pl("p", "203.0.113.0/24")},
			{op: "assign", svc: sv("ns/a", req("203.0.113.10")), addrs: []string{"203.0.113.10"}},
			{op: "assign", svc: sv("ns/b", req("203.0.113.10"), ports("TCP/81")), wantErr: ErrConflict, errText: "namespace isolation"},
			{op: "assign", svc: sv("ns/a", req("203.0.113.10"), key("k")), addrs: []string{"203.0.113.10"}},
			{op: "assign", svc: sv("ns/b", req("203.0.113.10"), key("k"), ports("TCP/81")), addrs: []string{"203.0.113.10"}},
		}},
		{name: "a sharing key makes automatic allocation share", steps: []step{
			{op: "pool", pool: pl("p", "203.0.113.0/24", def)},
			{op: "assign", svc: sv("ns/a", key("web"), ports("TCP/80")), addrs: []string{"203.0.113.1"}},
			{op: "assign", svc: sv("ns/b", key("web"), ports("TCP/443")), addrs: []string{"203.0.113.1"}},
			{desc: "clashing ports get their own address", op: "assign", svc: sv("ns/c", key("web"), ports("TCP/443")), addrs: []string{"203.0.113.2"}},
			{desc: "without a key never shared", op: "assign", svc: sv("ns/d", ports("TCP/8080")), addrs: []string{"203.0.113.3"}},
			{op: "status", pool: pl("p", ""), usage: 3, used: map[string]string{"203.0.113.1": "ns/a;ns/b", "203.0.113.2": "ns/c", "203.0.113.3": "ns/d"}},
		}},
		{name: "the earlier holder keeps a shared address when ports start to clash", steps: []step{
			{op: "pool", pool: pl("p", "203.0.113.0/24")},
			{op: "assign", svc: sv("ns/a", req("203.0.113.10"), ports("TCP/80")), addrs: []string{"203.0.113.10"}},
			{op: "assign", svc: sv("ns/b", req("203.0.113.10"), ports("TCP/81")), addrs: []string{"203.0.113.10"}},
			{desc: "the earlier holder changes its ports: it keeps the address", op: "assign", svc: sv("ns/a", req("203.0.113.10"), ports("TCP/80", "TCP/81")), addrs: []string{"203.0.113.10"}},
			{desc: "the later holder loses it and keeps no address", op: "assign", svc: sv("ns/b", req("203.0.113.10"), ports("TCP/81")), wantErr: ErrConflict},
			{op: "status", pool: pl("p", ""), usage: 1, used: map[string]string{"203.0.113.10": "ns/a"}},
		}},
		{name: "pool choice: namespace-bound Eips by priority, full skipped, then default", steps: []step{
			{op: "pool", pool: pl("low", "203.0.113.10", bound("team"), prio(20))},
			{op: "pool", pool: pl("high", "203.0.113.20", bound("team"), prio(10))},
			{op: "pool", pool: pl("off", "203.0.113.30", bound("team"), prio(1), disabled)},
			{op: "pool", pool: pl("dflt", "203.0.113.40-203.0.113.41", def)},
			{op: "assign", svc: sv("team/a"), addrs: []string{"203.0.113.20"}},
			{op: "assign", svc: sv("team/b"), addrs: []string{"203.0.113.10"}},
			{desc: "both bound Eips full: fall through to the default", op: "assign", svc: sv("team/c"), addrs: []string{"203.0.113.40"}},
			{desc: "other namespaces use the default", op: "assign", svc: sv("other/d"), addrs: []string{"203.0.113.41"}},
			{op: "assign", svc: sv("other/e"), wantErr: ErrExhausted, errText: "no free address in Eip dflt"},
			{desc: "a freed address in the top Eip does not move held ones", op: "release", svc: sv("team/a")},
			{op: "assign", svc: sv("team/b"), addrs: []string{"203.0.113.10"}},
			{op: "assign", svc: sv("team/c"), addrs: []string{"203.0.113.40"}},
			{desc: "re-enabled Eip with the best priority serves new Services only", op: "pool", pool: pl("off", "203.0.113.30", bound("team"), prio(1))},
			{op: "assign", svc: sv("team/b"), addrs: []string{"203.0.113.10"}},
			{op: "assign", svc: sv("team/f"), addrs: []string{"203.0.113.30"}},
		}},
		{name: "namespaceSelector binds by labels", steps: []step{
			{op: "pool", pool: pl("sel", "203.0.113.0/28", selector(map[string]string{"tier": "web"}))},
			{op: "pool", pool: pl("dflt", "203.0.113.100", def)},
			{op: "assign", svc: sv("ns/a", nsLabels(map[string]string{"tier": "web", "x": "y"})), addrs: []string{"203.0.113.1"}},
			{op: "assign", svc: sv("ns2/b", nsLabels(map[string]string{"tier": "db"})), addrs: []string{"203.0.113.100"}},
		}},
		{name: "default mode: a requested address or named Eip may lie in an Eip bound elsewhere", steps: []step{
			{op: "pool", pool: pl("team", "203.0.113.0/28", bound("team"))},
			{op: "assign", svc: sv("other/a", req("203.0.113.5")), addrs: []string{"203.0.113.5"}},
			{op: "assign", svc: sv("other/b", eips("team")), addrs: []string{"203.0.113.1"}},
			{desc: "but automatic allocation does not use it", op: "assign", svc: sv("other/c"), wantErr: ErrNoEip},
		}},
		{name: "namespace isolation refuses Eips bound elsewhere", opts: Options{Isolation: true}, steps: []step{
			{op: "pool", pool: pl("team", "203.0.113.0/28", bound("team"))},
			{op: "pool", pool: pl("dflt", "203.0.113.64/28", def, bound("team"))},
			{op: "pool", pool: pl("open", "203.0.113.128/28")},
			{op: "assign", svc: sv("other/a", req("203.0.113.5")), wantErr: ErrIsolation, errText: "namespace isolation: Eip team"},
			{op: "assign", svc: sv("other/b", eips("team")), wantErr: ErrIsolation},
			{op: "assign", svc: sv("other/c"), wantErr: ErrNoEip, errText: "default Eip dflt is bound to other namespaces"},
			{desc: "an unbound Eip is open to every namespace", op: "assign", svc: sv("other/d", eips("open")), addrs: []string{"203.0.113.128"}},
			{op: "assign", svc: sv("team/e", req("203.0.113.5")), addrs: []string{"203.0.113.5"}},
		}},
		{name: "restore: the older claim wins, the later one is reported", steps: []step{
			{op: "pool", pool: pl("p", "203.0.113.0/24", def)},
			{op: "restore", svc: sv("ns/old"), addrs: []string{"203.0.113.5"}},
			{op: "restore", svc: sv("ns/new", ports("TCP/80")), addrs: []string{"203.0.113.5"}, wantErr: ErrConflict, errText: "held by ns/old"},
			{op: "restore", svc: sv("ns/nowhere"), addrs: []string{"198.51.100.1"}, wantErr: ErrNoEip},
			{desc: "new allocations skip restored addresses", op: "assign", svc: sv("ns/x"), addrs: []string{"203.0.113.1"}},
			{op: "assign", svc: sv("ns/old"), addrs: []string{"203.0.113.5"}},
			{desc: "the later Service gets a fresh address", op: "assign", svc: sv("ns/new", ports("TCP/80")), addrs: []string{"203.0.113.2"}},
		}},
		{name: "restore uses the recorded pool, even outside its shrunk range", steps: []step{
			{op: "pool", pool: pl("a", "203.0.113.0/28")},
			{op: "pool", pool: pl("b", "203.0.113.32/28")},
			{op: "restore", svc: sv("ns/s"), addrs: []string{"203.0.113.20"}, hints: []string{"a"}},
			{op: "status", pool: pl("a", ""), usage: 1, outside: []string{"203.0.113.20"}},
			{op: "assign", svc: sv("ns/s", eips("a")), addrs: []string{"203.0.113.20"}},
		}},
		{name: "an address is reusable only after the write without it", steps: []step{
			{op: "pool", pool: pl("p", "203.0.113.1-203.0.113.2", def)},
			{op: "assign", svc: sv("ns/a"), addrs: []string{"203.0.113.1"}},
			{desc: "a asks for another address; the write has not happened", op: "assign", svc: sv("ns/a", req("203.0.113.2")), addrs: []string{"203.0.113.2"}, noCommit: true},
			{desc: ".1 is still held", op: "assign", svc: sv("ns/b"), wantErr: ErrExhausted},
			{op: "commit", svc: sv("ns/a"), addrs: []string{"203.0.113.2"}},
			{op: "assign", svc: sv("ns/b"), addrs: []string{"203.0.113.1"}},
		}},
		{name: "a failed write leaves the old address, a retry converges", steps: []step{
			{op: "pool", pool: pl("p", "203.0.113.0/24", def)},
			{op: "assign", svc: sv("ns/a"), addrs: []string{"203.0.113.1"}, noCommit: true},
			{op: "assign", svc: sv("ns/a"), addrs: []string{"203.0.113.1"}},
			{op: "release", svc: sv("ns/a")},
			{op: "status", pool: pl("p", ""), usage: 0},
		}},
		{name: "live pool changes: grow at once, shrink keeps addresses in use", steps: []step{
			{op: "pool", pool: pl("p", "203.0.113.1-203.0.113.2", def)},
			{op: "assign", svc: sv("ns/a"), addrs: []string{"203.0.113.1"}},
			{op: "assign", svc: sv("ns/b"), addrs: []string{"203.0.113.2"}},
			{op: "assign", svc: sv("ns/c"), wantErr: ErrExhausted},
			{op: "pool", pool: pl("p", "203.0.113.1-203.0.113.4", def)},
			{op: "assign", svc: sv("ns/c"), addrs: []string{"203.0.113.3"}},
			{desc: "shrink under a held address (webhook bypassed)", op: "pool", pool: pl("p", "203.0.113.3-203.0.113.4", def)},
			{op: "status", pool: pl("p", ""), usage: 3, outside: []string{"203.0.113.1", "203.0.113.2"}},
			{op: "assign", svc: sv("ns/a"), addrs: []string{"203.0.113.1"}},
			{op: "assign", svc: sv("ns/d"), addrs: []string{"203.0.113.4"}},
			{op: "status", pool: pl("p", ""), usage: 4, occupied: true, outside: []string{"203.0.113.1", "203.0.113.2"}},
			{op: "release", svc: sv("ns/a")},
			{op: "status", pool: pl("p", ""), usage: 3, occupied: true, outside: []string{"203.0.113.2"}},
		}},
		{name: "a removed Eip: its Services move on their next assignment", steps: []step{
			{op: "pool", pool: pl("a", "203.0.113.0/28", def)},
			{op: "pool", pool: pl("b", "203.0.113.32/28", def)},
			{op: "assign", svc: sv("ns/s"), addrs: []string{"203.0.113.1"}},
			{op: "remove", pool: pl("a", "")},
			{op: "assign", svc: sv("ns/s"), addrs: []string{"203.0.113.32"}},
		}},
		{name: "overlapping Eips: the later one gets no new allocations", steps: []step{
			{op: "pool", pool: pl("old", "203.0.113.0/28")},
			{op: "pool", pool: pl("new", "203.0.113.8/28", created(time.Hour))},
			{op: "assign", svc: sv("ns/a", eips("new")), wantErr: ErrUnavailable, errText: "overlaps Eip old"},
			{op: "assign", svc: sv("ns/b", req("203.0.113.12")), addrs: []string{"203.0.113.12"}},
			{op: "status", pool: pl("old", ""), usage: 1},
		}},
		{name: "an invalid request keeps what the Service has", steps: []step{
			{op: "pool", pool: pl("p", "203.0.113.0/24", def)},
			{op: "assign", svc: sv("ns/a", v4), addrs: []string{"203.0.113.1"}},
			{op: "assign", svc: sv("ns/a", v4, req("2001:db8::1")), addrs: []string{"203.0.113.1"}, wantErr: ErrInvalid},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runStory(t, tt.opts, tt.steps) })
	}
}

func TestCallbacksAndPending(t *testing.T) {
	var changed []string
	retries := 0
	a := New(Options{OnPoolChange: func(p string) { changed = append(changed, p) }, OnRetry: func() { retries++ }})
	a.SetPool(pl("p", "203.0.113.1", def))
	if _, err := a.Assign(sv("ns/a")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Assign(sv("ns/b")); !errors.Is(err, ErrExhausted) {
		t.Fatalf("err = %v", err)
	}
	if p := a.Pending(); len(p) != 1 || p[0] != (ServiceKey{"ns", "b"}) {
		t.Fatalf("Pending() = %v", p)
	}
	before := retries
	a.Release(ServiceKey{"ns", "a"})
	if retries == before {
		t.Fatal("freeing an address did not ask for a retry")
	}
	if !slices.Contains(changed, "p") {
		t.Fatalf("no pool change reported: %v", changed)
	}
	if got, err := a.Assign(sv("ns/b")); err != nil || len(got) != 1 {
		t.Fatalf("retry: %v %v", got, err)
	}
	if len(a.Pending()) != 0 {
		t.Fatalf("still pending: %v", a.Pending())
	}
	if h := a.Holders(netip.MustParseAddr("203.0.113.1")); len(h) != 1 || h[0].Name != "b" {
		t.Fatalf("Holders = %v", h)
	}
	keys, n := a.Services("p", 10)
	if n != 1 || keys[0].Name != "b" {
		t.Fatalf("Services = %v %d", keys, n)
	}
	outside, n := a.InUseOutside("p", mr("203.0.113.2-203.0.113.3"), 10)
	if n != 1 || outside[0].HoldersString() != "ns/b" {
		t.Fatalf("InUseOutside = %v %d", outside, n)
	}
}

// A PreferDualStack Service that got one family is listed as incomplete
// (the controller re-evaluates it when Eips change) until the other family
// is assigned, and is never pending.
func TestIncomplete(t *testing.T) {
	a := New(Options{})
	a.SetPool(pl("v4", "203.0.113.0/24", def))
	key := ServiceKey{"ns", "p"}
	if got, err := a.Assign(sv("ns/p", prefer(IPv4))); err != nil || len(got) != 1 {
		t.Fatalf("Assign = %v, %v", got, err)
	}
	if got := a.Incomplete(); !slices.Equal(got, []ServiceKey{key}) {
		t.Fatalf("Incomplete() = %v, want [ns/p]", got)
	}
	if len(a.Pending()) != 0 {
		t.Fatalf("Pending() = %v, want none", a.Pending())
	}
	a.SetPool(pl("v6", "2001:db8::/64", def))
	if got, err := a.Assign(sv("ns/p", prefer(IPv4))); err != nil || len(got) != 2 {
		t.Fatalf("Assign with an IPv6 pool = %v, %v", got, err)
	}
	if got := a.Incomplete(); len(got) != 0 {
		t.Fatalf("Incomplete() = %v after both families", got)
	}
	a.RemovePool("v6")
	if _, err := a.Assign(sv("ns/p", prefer(IPv4))); err != nil {
		t.Fatal(err)
	}
	a.Release(key)
	if got := a.Incomplete(); len(got) != 0 {
		t.Fatalf("Incomplete() = %v after Release", got)
	}
}

func TestCanShare(t *testing.T) {
	tests := []struct {
		name      string
		a, b      Service
		isolation bool
		ok        bool
	}{
		{"same namespace, distinct ports", sv("n/a", ports("TCP/80")), sv("n/b", ports("TCP/443")), false, true},
		{"same namespace, same port", sv("n/a", ports("TCP/80")), sv("n/b", ports("TCP/80")), false, false},
		{"protocol defaults to TCP", sv("n/a", ports("/80")), sv("n/b", ports("tcp/80")), false, false},
		{"TCP and UDP on one port", sv("n/a", ports("TCP/53")), sv("n/b", ports("UDP/53")), false, true},
		{"ETP differs", sv("n/a", ports("TCP/80")), sv("n/b", ports("TCP/81"), local()), false, false},
		{"both Local", sv("n/a", local()), sv("n/b", ports("TCP/81"), local()), false, true},
		{"cross namespace, no key", sv("n/a"), sv("m/b", ports("TCP/81")), false, false},
		{"cross namespace, one key", sv("n/a", key("k")), sv("m/b", ports("TCP/81")), false, false},
		{"cross namespace, same key", sv("n/a", key("k")), sv("m/b", ports("TCP/81"), key("k")), false, true},
		{"isolation, same namespace, no key", sv("n/a"), sv("n/b", ports("TCP/81")), true, false},
		{"isolation, same key", sv("n/a", key("k")), sv("n/b", ports("TCP/81"), key("k")), true, true},
		{"one key in one namespace", sv("n/a", key("k")), sv("n/b", ports("TCP/81")), false, true},
		{"a Service shares with itself", sv("n/a"), sv("n/a"), true, true},
	}
	for _, tt := range tests {
		err := CanShare(&tt.a, &tt.b, tt.isolation)
		if (err == nil) != tt.ok {
			t.Errorf("%s: CanShare = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrConflict) {
			t.Errorf("%s: %v is not a conflict", tt.name, err)
		}
	}
}
