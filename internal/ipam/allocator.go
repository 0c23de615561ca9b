package ipam

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Options configure an Allocator.
type Options struct {
	// Isolation is the namespace isolation switch: a Service never gets an
	// address from a pool bound to other namespaces, and sharing always
	// needs a sharing key.
	Isolation bool
	// OnPoolChange is called when the addresses in use of a pool, or their
	// holders, change. It runs with the allocator's lock held: it must not
	// block or call the Allocator.
	OnPoolChange func(pool string)
	// OnRetry is called when Services without their addresses may now get
	// them (an address was freed, a pool changed) or must be rechecked.
	// Same rules as OnPoolChange.
	OnRetry func()
}

// An Allocator hands out addresses of pools to Services. It keeps, per
// Service, the addresses written to the Service (held) and the addresses
// it should have (wanted); an address is free again only when no Service
// holds or wants it, so an address is never reused before the Service that
// had it was written without it (Commit) or is gone (Release).
type Allocator struct {
	mu      sync.Mutex
	opts    Options
	pools   map[string]*pool
	addrs   map[netip.Addr]*addrState
	svcs    map[ServiceKey]*svcState
	keyed   map[string]map[netip.Addr]struct{} // sharing key → addresses one of whose holders carries it
	pending map[ServiceKey]struct{}
	// partial: Services without an optional family (PreferDualStack),
	// re-evaluated when Eips or namespace labels change.
	partial map[ServiceKey]struct{}
}

type addrState struct {
	pool   string
	owners []*svcState // in the order they got the address
	keys   []string    // sharing keys under which the address is indexed
}

type binding struct {
	addr   netip.Addr
	pool   string
	held   bool // written to the Service
	wanted bool // part of the Service's desired addresses
}

type svcState struct {
	svc   Service
	binds []*binding
}

// Assigned is one address of a Service and the pool it comes from.
type Assigned struct {
	Addr netip.Addr
	Pool string
}

// New returns an empty Allocator.
func New(o Options) *Allocator {
	return &Allocator{
		opts:    o,
		pools:   map[string]*pool{},
		addrs:   map[netip.Addr]*addrState{},
		svcs:    map[ServiceKey]*svcState{},
		keyed:   map[string]map[netip.Addr]struct{}{},
		pending: map[ServiceKey]struct{}{},
		partial: map[ServiceKey]struct{}{},
	}
}

// Isolation reports the namespace isolation switch.
func (a *Allocator) Isolation() bool { return a.opts.Isolation }

func (a *Allocator) notify(pool string) {
	if a.opts.OnPoolChange != nil && pool != "" {
		a.opts.OnPoolChange(pool)
	}
}

func (a *Allocator) retry() {
	if a.opts.OnRetry != nil {
		a.opts.OnRetry()
	}
}

// SetPool adds a pool or changes its configuration. A changed range takes
// effect at once: addresses in use stay allocated even outside the new
// range (they are reported by PoolStatus), new addresses come from the new
// range. Cost: O(P²) for the overlap check, plus O(n log n) when the range
// changed.
func (a *Allocator) SetPool(cfg Pool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pools[cfg.Name]
	switch {
	case p == nil:
		p = newPool(cfg)
		a.pools[cfg.Name] = p
		for addr, as := range a.addrs {
			p.take(addr)
			if as.pool == cfg.Name { // the pool was removed and is back
				p.held.ReplaceOrInsert(addr)
			}
		}
	case p.cfg.Range != cfg.Range:
		p.cfg = cfg
		p.resetSpaces()
		for addr := range a.addrs {
			p.take(addr)
		}
	default:
		p.cfg = cfg
	}
	a.recomputeConflicts()
	a.notify(cfg.Name)
	a.retry()
}

// RemovePool forgets a pool. Services holding its addresses keep them until
// their next Assign, which moves them to another pool.
func (a *Allocator) RemovePool(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pools[name]
	if p == nil {
		return
	}
	delete(a.pools, name)
	p.held.Ascend(func(addr netip.Addr) bool {
		for _, o := range a.addrs[addr].owners {
			a.pending[o.svc.Key] = struct{}{}
		}
		return true
	})
	a.recomputeConflicts()
	a.retry()
}

// HasPool reports whether a pool is known.
func (a *Allocator) HasPool(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pools[name] != nil
}

// recomputeConflicts marks every pool that overlaps an older one.
func (a *Allocator) recomputeConflicts() {
	ps := make([]*pool, 0, len(a.pools))
	for _, p := range a.pools {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(x, y *pool) int {
		if c := x.cfg.Created.Compare(y.cfg.Created); c != 0 {
			return c
		}
		return strings.Compare(x.cfg.Name, y.cfg.Name)
	})
	for i, p := range ps {
		p.conflict = ""
		for _, q := range ps[:i] {
			if p.cfg.Range.Overlaps(q.cfg.Range) {
				p.conflict = q.cfg.Name
				break
			}
		}
	}
}

func (a *Allocator) state(s Service) *svcState {
	st := a.svcs[s.Key]
	if st == nil {
		st = &svcState{svc: s}
		a.svcs[s.Key] = st
		return st
	}
	keyChanged := st.svc.SharingKey != s.SharingKey
	st.svc = s
	if keyChanged {
		for _, b := range st.binds {
			a.reindex(b.addr, a.addrs[b.addr])
		}
	}
	return st
}

// reindex updates the sharing-key index of one address.
func (a *Allocator) reindex(addr netip.Addr, as *addrState) {
	var keys []string
	for _, o := range as.owners {
		if k := o.svc.SharingKey; k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, k := range as.keys {
		if !slices.Contains(keys, k) {
			delete(a.keyed[k], addr)
			if len(a.keyed[k]) == 0 {
				delete(a.keyed, k)
			}
		}
	}
	for _, k := range keys {
		m := a.keyed[k]
		if m == nil {
			m = map[netip.Addr]struct{}{}
			a.keyed[k] = m
		}
		m[addr] = struct{}{}
	}
	as.keys = keys
}

// bind gives addr to the Service; created is false when it had it already.
func (a *Allocator) bind(st *svcState, addr netip.Addr, poolName string) (b *binding, created bool) {
	for _, b := range st.binds {
		if b.addr == addr {
			b.wanted = true
			return b, false
		}
	}
	as := a.addrs[addr]
	if as == nil {
		as = &addrState{pool: poolName}
		a.addrs[addr] = as
		for _, p := range a.pools {
			p.take(addr)
		}
		if p := a.pools[poolName]; p != nil {
			p.held.ReplaceOrInsert(addr)
		}
	}
	as.owners = append(as.owners, st)
	a.reindex(addr, as)
	a.notify(as.pool)
	b = &binding{addr: addr, pool: as.pool, wanted: true}
	st.binds = append(st.binds, b)
	return b, true
}

// unbind takes addr away from the Service and frees it when nobody else
// has it.
func (a *Allocator) unbind(st *svcState, b *binding) {
	st.binds = slices.DeleteFunc(st.binds, func(x *binding) bool { return x == b })
	as := a.addrs[b.addr]
	as.owners = slices.DeleteFunc(as.owners, func(x *svcState) bool { return x == st })
	a.notify(as.pool)
	if len(as.owners) > 0 {
		a.reindex(b.addr, as)
		return
	}
	delete(a.addrs, b.addr)
	as.owners = nil
	a.reindex(b.addr, as)
	for _, p := range a.pools {
		p.release(b.addr)
	}
	if p := a.pools[as.pool]; p != nil {
		p.held.Delete(b.addr)
	}
	a.retry()
}

// gc drops the bindings that are neither held nor wanted.
func (a *Allocator) gc(st *svcState) {
	for _, b := range slices.Clone(st.binds) {
		if !b.held && !b.wanted {
			a.unbind(st, b)
		}
	}
}

func (a *Allocator) setPending(key ServiceKey, pending bool) {
	if pending {
		a.pending[key] = struct{}{}
	} else {
		delete(a.pending, key)
	}
}

// Restore records addresses a Service already holds (read from its
// status) before any Assign. Call it for every Service, oldest first: a
// later Service claiming an address an older one holds, and that it may
// not share, does not get it (the error says so). hints are the pools the
// Service records (allocated-from annotation, Eip label); without a hint
// the pool containing the address is used.
func (a *Allocator) Restore(s Service, addrs []netip.Addr, hints []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.state(s)
	var errs []error
	for _, addr := range addrs {
		poolName := a.restorePool(addr, hints)
		if poolName == "" {
			errs = append(errs, errorf(ReasonNoEip, "address %s is in no Eip", addr))
			continue
		}
		if as := a.addrs[addr]; as != nil && !slices.Contains(as.owners, st) {
			if err := a.shareable(st, as); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		b, _ := a.bind(st, addr, poolName)
		b.held = true
	}
	a.setPending(s.Key, len(errs) > 0)
	return errors.Join(errs...)
}

func (a *Allocator) restorePool(addr netip.Addr, hints []string) string {
	for _, h := range hints {
		if p := a.pools[h]; p != nil && p.cfg.Range.Contains(addr) {
			return h
		}
	}
	if p := a.containing(addr); p != nil {
		return p.cfg.Name
	}
	for _, h := range hints { // the pool shrank underneath the address
		if p := a.pools[h]; p != nil && p.cfg.Range.First.Is4() == addr.Is4() {
			return h
		}
	}
	return ""
}

// containing returns the pool whose range holds addr, preferring pools not
// in conflict, then older pools.
func (a *Allocator) containing(addr netip.Addr) *pool {
	var best *pool
	for _, p := range a.pools {
		if !p.cfg.Range.Contains(addr) {
			continue
		}
		if best == nil || better(p, best) {
			best = p
		}
	}
	return best
}

func better(p, q *pool) bool {
	if (p.conflict == "") != (q.conflict == "") {
		return p.conflict == ""
	}
	if c := p.cfg.Created.Compare(q.cfg.Created); c != 0 {
		return c < 0
	}
	return p.cfg.Name < q.cfg.Name
}

// shareable checks the Service against every holder of an address.
func (a *Allocator) shareable(st *svcState, as *addrState) error {
	for _, o := range as.owners {
		if o == st {
			continue
		}
		if err := CanShare(&st.svc, &o.svc, a.opts.Isolation); err != nil {
			return errorf(ReasonConflict, "address is held by %s and cannot be shared: %s", o.svc.Key, err)
		}
	}
	return nil
}

// Assign computes the addresses a Service should have and reserves them.
// An address the Service has keeps as long as it still matches the request
// (never moved because of pool order or another pool filling up). New
// addresses are all-or-nothing across the required families. Errors are
// *Error values (joined, one per family); the returned addresses are what
// the Service should show even then. An invalid request keeps what the
// Service has. Cost: O(log n) plus O(P) pool lookups.
func (a *Allocator) Assign(s Service) ([]Assigned, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.state(s)
	if err := Validate(&st.svc); err != nil {
		a.setPending(s.Key, true)
		return wantedOf(st), err
	}
	fams := st.svc.Families
	if len(fams) == 0 {
		fams = []FamilyRequest{{}}
	}
	var out, fresh []*binding
	var errs []error
	missing := false
	for _, fr := range fams {
		if b := current(st, fr.Family, out); b != nil {
			err := a.keep(st, b, fr.Family)
			if err == nil {
				out = append(out, b)
				continue
			}
			if ReasonOf(err) == ReasonConflict {
				errs = append(errs, err)
				continue
			}
		}
		b, created, err := a.choose(st, fr.Family)
		if err != nil {
			if !fr.Optional {
				errs = append(errs, err)
			} else {
				missing = true
			}
			continue
		}
		out = append(out, b)
		if created {
			fresh = append(fresh, b)
		}
	}
	if len(errs) > 0 && len(fresh) > 0 {
		for _, b := range fresh {
			a.unbind(st, b)
		}
		out = slices.DeleteFunc(out, func(b *binding) bool { return slices.Contains(fresh, b) })
	}
	for _, b := range st.binds {
		b.wanted = slices.Contains(out, b)
	}
	a.gc(st)
	a.setPending(s.Key, len(errs) > 0)
	if missing {
		a.partial[s.Key] = struct{}{}
	} else {
		delete(a.partial, s.Key)
	}
	res := make([]Assigned, len(out))
	for i, b := range out {
		res[i] = Assigned{Addr: b.addr, Pool: b.pool}
	}
	return res, errors.Join(errs...)
}

func wantedOf(st *svcState) []Assigned {
	var res []Assigned
	for _, b := range st.binds {
		if b.wanted {
			res = append(res, Assigned{Addr: b.addr, Pool: b.pool})
		}
	}
	return res
}

// Validate checks a request on its own: families listed once, requested
// addresses of wanted families.
func Validate(s *Service) error {
	for i, f := range s.Families {
		for _, g := range s.Families[:i] {
			if g.Family == f.Family {
				return errorf(ReasonInvalid, "family %s listed twice", f.Family)
			}
		}
	}
	for _, addr := range s.Addrs {
		if !s.wants(FamilyOf(addr)) {
			return errorf(ReasonInvalid, "requested address %s is %s, but the Service's ipFamilies are %s",
				addr, FamilyOf(addr), familiesString(s.Families))
		}
	}
	return nil
}

func familiesString(fs []FamilyRequest) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Family.String()
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// current returns the wanted address of family f not yet in out.
func current(st *svcState, f Family, out []*binding) *binding {
	for _, b := range st.binds {
		if b.wanted && (f == 0 || FamilyOf(b.addr) == f) && !slices.Contains(out, b) {
			return b
		}
	}
	return nil
}

// keep checks that an address the Service has still matches its request.
func (a *Allocator) keep(st *svcState, b *binding, f Family) error {
	s := &st.svc
	p := a.pools[b.pool]
	if p == nil {
		return errorf(ReasonNoEip, "Eip %s of address %s no longer exists", b.pool, b.addr)
	}
	if len(s.Eips) > 0 && !slices.Contains(s.Eips, b.pool) {
		return errorf(ReasonInvalid, "address %s is from Eip %s, not a requested Eip", b.addr, b.pool)
	}
	if req, ok := s.requested(f); ok && req != b.addr {
		return errorf(ReasonInvalid, "address %s is not the requested %s", b.addr, req)
	}
	as := a.addrs[b.addr]
	earlier := true
	for _, o := range as.owners {
		if o == st {
			earlier = false
			continue
		}
		err := CanShare(s, &o.svc, a.opts.Isolation)
		if err == nil {
			continue
		}
		if earlier {
			return errorf(ReasonConflict, "address %s is held by %s and cannot be shared: %s", b.addr, o.svc.Key, err)
		}
		// A later holder no longer fits: it loses the address on its
		// next Assign.
		a.pending[o.svc.Key] = struct{}{}
		a.retry()
	}
	return nil
}

// namedFor returns the pool named in the Service's Eip list for family f.
func (a *Allocator) namedFor(s *Service, f Family) (*pool, error) {
	var missing []string
	for _, n := range s.Eips {
		p := a.pools[n]
		if p == nil {
			missing = append(missing, n)
			continue
		}
		if f == 0 || p.cfg.Range.Family() == f {
			return p, nil
		}
	}
	if len(missing) > 0 {
		return nil, errorf(ReasonNoEip, "Eip %s not found", strings.Join(missing, ", "))
	}
	return nil, errorf(ReasonInvalid, "none of the requested Eips (%s) is %s", strings.Join(s.Eips, ", "), f)
}

// allowed applies namespace isolation to a pool.
func (a *Allocator) allowed(s *Service, p *pool) error {
	if a.opts.Isolation && p.cfg.BoundElsewhere(s.Key.Namespace, s.NamespaceLabels) {
		return errorf(ReasonIsolation, "namespace isolation: Eip %s is bound to other namespaces than %s", p.cfg.Name, s.Key.Namespace)
	}
	return nil
}

// choose picks a new address of family f (0: any) for the Service:
// explicit Eip, then requested address, then namespace-bound Eips by
// priority, then the default Eip.
func (a *Allocator) choose(st *svcState, f Family) (*binding, bool, error) {
	s := &st.svc
	req, hasReq := s.requested(f)
	if len(s.Eips) > 0 {
		p, err := a.namedFor(s, f)
		if err != nil {
			return nil, false, err
		}
		if err := a.allowed(s, p); err != nil {
			return nil, false, err
		}
		if why := p.unusable(); why != "" {
			return nil, false, errorf(ReasonUnavailable, "%s", why)
		}
		if hasReq {
			if !p.cfg.Range.Contains(req) {
				return nil, false, errorf(ReasonInvalid, "requested address %s is not in Eip %s (%s)", req, p.cfg.Name, p.cfg.Range)
			}
			return a.claim(st, req, p)
		}
		if b, created := a.fresh(st, p); b != nil {
			return b, created, nil
		}
		return nil, false, errorf(ReasonExhausted, "Eip %s has no free address", p.cfg.Name)
	}
	if hasReq {
		p := a.containing(req)
		if p == nil {
			return nil, false, errorf(ReasonNoEip, "no Eip contains the requested address %s", req)
		}
		if err := a.allowed(s, p); err != nil {
			return nil, false, err
		}
		if why := p.unusable(); why != "" {
			return nil, false, errorf(ReasonUnavailable, "no available eip was found containing the ip:[%s]: %s", req, why)
		}
		return a.claim(st, req, p)
	}
	chain, skipped := a.chain(s, f)
	for _, p := range chain {
		if b, created := a.fresh(st, p); b != nil {
			return b, created, nil
		}
	}
	fam := ""
	if f != 0 {
		fam = " " + f.String()
	}
	if len(chain) == 0 {
		msg := "no available default eip found"
		if f != 0 {
			msg = "no available" + fam + " eip found (no namespace-bound or default Eip)"
		}
		if len(skipped) > 0 {
			msg += ": " + strings.Join(skipped, "; ")
		}
		return nil, false, errorf(ReasonNoEip, "%s", msg)
	}
	names := make([]string, len(chain))
	for i, p := range chain {
		names[i] = p.cfg.Name
	}
	return nil, false, errorf(ReasonExhausted, "no free%s address in Eip %s", fam, strings.Join(names, ", "))
}

// chain returns the pools automatic allocation tries, in order: usable
// pools bound to the namespace by (priority, name), then default pools.
func (a *Allocator) chain(s *Service, f Family) (chain []*pool, skipped []string) {
	var bound, defaults []*pool
	for _, p := range a.pools {
		if f != 0 && p.cfg.Range.Family() != f {
			continue
		}
		isBound := p.cfg.BoundTo(s.Key.Namespace, s.NamespaceLabels)
		if !isBound && !p.cfg.Default {
			continue
		}
		if why := p.unusable(); why != "" {
			skipped = append(skipped, why)
			continue
		}
		switch {
		case isBound:
			bound = append(bound, p)
		case a.opts.Isolation && p.cfg.BoundElsewhere(s.Key.Namespace, s.NamespaceLabels):
			skipped = append(skipped, fmt.Sprintf("namespace isolation: default Eip %s is bound to other namespaces", p.cfg.Name))
		default:
			defaults = append(defaults, p)
		}
	}
	slices.SortFunc(bound, func(x, y *pool) int {
		if c := cmp.Compare(x.cfg.Priority, y.cfg.Priority); c != 0 {
			return c
		}
		return strings.Compare(x.cfg.Name, y.cfg.Name)
	})
	slices.SortFunc(defaults, func(x, y *pool) int { return strings.Compare(x.cfg.Name, y.cfg.Name) })
	slices.Sort(skipped)
	return append(bound, defaults...), skipped
}

// claim gives the Service a requested address, sharing it when allowed.
func (a *Allocator) claim(st *svcState, req netip.Addr, p *pool) (*binding, bool, error) {
	if as := a.addrs[req]; as != nil {
		if err := a.shareable(st, as); err != nil {
			return nil, false, errorf(ReasonConflict, "requested %s", strings.Replace(err.Error(), "address", "address "+req.String(), 1))
		}
		b, created := a.bind(st, req, as.pool)
		return b, created, nil
	}
	if !p.isFree(req) {
		return nil, false, errorf(ReasonConflict, "requested address %s is not free in Eip %s", req, p.cfg.Name)
	}
	b, created := a.bind(st, req, p.cfg.Name)
	return b, created, nil
}

// fresh picks an address of pool p for automatic allocation: with a
// sharing key, the lowest address of p already used by Services it may
// share with; otherwise the lowest free address (.0/.255 last). It returns
// nil when p is full.
func (a *Allocator) fresh(st *svcState, p *pool) (*binding, bool) {
	if key := st.svc.SharingKey; key != "" {
		var best netip.Addr
		for addr := range a.keyed[key] {
			as := a.addrs[addr]
			if as.pool != p.cfg.Name || slices.Contains(as.owners, st) || (best.IsValid() && best.Less(addr)) {
				continue
			}
			if a.shareable(st, as) == nil {
				best = addr
			}
		}
		if best.IsValid() {
			return a.bind(st, best, p.cfg.Name)
		}
	}
	addr, ok := p.lowest()
	if !ok {
		return nil, false
	}
	return a.bind(st, addr, p.cfg.Name)
}

// Commit records that the Service was written with exactly the addresses
// in written; addresses it no longer wants are freed.
func (a *Allocator) Commit(key ServiceKey, written []netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.svcs[key]
	if st == nil {
		return
	}
	for _, b := range st.binds {
		b.held = slices.Contains(written, b.addr)
	}
	a.gc(st)
}

// Release forgets a Service and frees its addresses. Call it once the
// Service is gone or was written without addresses.
func (a *Allocator) Release(key ServiceKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.svcs[key]
	delete(a.pending, key)
	delete(a.partial, key)
	if st == nil {
		return
	}
	for _, b := range slices.Clone(st.binds) {
		a.unbind(st, b)
	}
	delete(a.svcs, key)
}

// Incomplete returns the Services whose last Assign left an optional
// family (PreferDualStack) without an address: a new or changed Eip may
// give them one.
func (a *Allocator) Incomplete() []ServiceKey {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]ServiceKey, 0, len(a.partial))
	for k := range a.partial {
		out = append(out, k)
	}
	return out
}

// Pending returns the Services whose last Assign or Restore failed, or
// that must be rechecked.
func (a *Allocator) Pending() []ServiceKey {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]ServiceKey, 0, len(a.pending))
	for k := range a.pending {
		out = append(out, k)
	}
	return out
}

// Held returns the addresses recorded as written to the Service.
func (a *Allocator) Held(key ServiceKey) []netip.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.svcs[key]
	if st == nil {
		return nil
	}
	var out []netip.Addr
	for _, b := range st.binds {
		if b.held {
			out = append(out, b.addr)
		}
	}
	return out
}

// Known reports whether the allocator tracks the Service.
func (a *Allocator) Known(key ServiceKey) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.svcs[key] != nil
}

// Holders returns the Services holding or wanting addr.
func (a *Allocator) Holders(addr netip.Addr) []ServiceKey {
	a.mu.Lock()
	defer a.mu.Unlock()
	as := a.addrs[addr]
	if as == nil {
		return nil
	}
	out := make([]ServiceKey, len(as.owners))
	for i, o := range as.owners {
		out[i] = o.svc.Key
	}
	return out
}
