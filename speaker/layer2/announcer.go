package layer2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// DefaultBurst is when gratuitous announcements go out after a node starts
// announcing an address: at once, then a few times over the next seconds so
// that a lost frame, a switch still learning, or a client that was busy do
// not keep the old MAC.
var DefaultBurst = []time.Duration{0, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}

// AnnouncerConfig configures an Announcer.
type AnnouncerConfig struct {
	Dialer Dialer
	// Burst are the offsets of the gratuitous rounds after a takeover.
	Burst []time.Duration
	// Refresh re-announces every address periodically after its burst
	// (--gratuitous-refresh); 0 disables it.
	Refresh time.Duration
	Now     func() time.Time
}

// An Announcer answers for a set of addresses, each on its interface, and
// schedules their gratuitous announcements.
type Announcer struct {
	cfg AnnouncerConfig
	log logr.Logger

	mu     sync.Mutex
	owned  map[netip.Addr]string // address -> interface
	resp   map[string]*responder
	sched  map[netip.Addr]schedule
	closed bool
	wake   chan struct{}
}

type schedule struct {
	start time.Time
	step  int // next index into Burst; len(Burst) = refresh phase
	next  time.Time
}

// NewAnnouncer returns an Announcer; Run drives its gratuitous schedule.
func NewAnnouncer(cfg AnnouncerConfig, log logr.Logger) *Announcer {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Burst == nil {
		cfg.Burst = DefaultBurst
	}
	return &Announcer{cfg: cfg, log: log, owned: map[netip.Addr]string{}, resp: map[string]*responder{},
		sched: map[netip.Addr]schedule{}, wake: make(chan struct{}, 1)}
}

// Set makes the node answer for exactly addrs (address -> interface).
// Addresses no longer listed stop being answered before Set returns; new
// ones (or ones that moved to another interface) get a gratuitous burst,
// the first round before Set returns.
func (a *Announcer) Set(addrs map[netip.Addr]string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errors.New("announcer closed")
	}
	byIface := map[string]map[netip.Addr]bool{}
	for ip, ifn := range addrs {
		if byIface[ifn] == nil {
			byIface[ifn] = map[netip.Addr]bool{}
		}
		byIface[ifn][ip] = true
	}
	var errs []error
	// Shrink first: removed addresses stop at once.
	for ifn, r := range a.resp {
		want := byIface[ifn]
		if len(want) == 0 {
			r.close()
			delete(a.resp, ifn)
			continue
		}
		keep := map[netip.Addr]bool{}
		for ip := range *r.owned.Load() {
			if want[ip] {
				keep[ip] = true
			}
		}
		if err := r.set(keep); err != nil {
			errs = append(errs, err)
		}
	}
	for ip, ifn := range a.owned {
		if addrs[ip] != ifn {
			delete(a.owned, ip)
			delete(a.sched, ip)
		}
	}
	// Then grow.
	now := a.cfg.Now()
	for ifn, want := range byIface {
		r, err := a.responder(ifn)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := r.set(want); err != nil {
			errs = append(errs, err)
		}
		for ip := range want {
			if _, ok := a.owned[ip]; ok {
				continue
			}
			a.owned[ip] = ifn
			a.sched[ip] = schedule{start: now, next: now}
		}
	}
	a.sendDue(now)
	a.poke()
	return errors.Join(errs...)
}

// responder returns the interface's responder, (re)creating it when the
// interface is new or was recreated or changed its MAC; a.mu must be held.
func (a *Announcer) responder(name string) (*responder, error) {
	ifi, err := a.cfg.Dialer.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	if r, ok := a.resp[name]; ok {
		if r.ifi.Index == ifi.Index && bytes.Equal(r.ifi.HardwareAddr, ifi.HardwareAddr) {
			return r, nil
		}
		r.close()
		for ip, ifn := range a.owned { // re-announce with the new MAC
			if ifn == name {
				delete(a.owned, ip)
			}
		}
	}
	r := newResponder(ifi, a.cfg.Dialer, a.log)
	a.resp[name] = r
	return r, nil
}

// Reannounce sends a new burst for every address (after a peer rejoined:
// it may have announced some of them while it was cut off).
func (a *Announcer) Reannounce() {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	for ip := range a.owned {
		a.sched[ip] = schedule{start: now, next: now}
	}
	a.sendDue(now)
	a.poke()
}

// Owned returns the addresses answered for, with their interfaces.
func (a *Announcer) Owned() map[netip.Addr]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[netip.Addr]string, len(a.owned))
	for ip, ifn := range a.owned {
		out[ip] = ifn
	}
	return out
}

// Close stops answering everything at once and closes the sockets.
func (a *Announcer) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	for n, r := range a.resp {
		r.close()
		delete(a.resp, n)
	}
	a.owned, a.sched = map[netip.Addr]string{}, map[netip.Addr]schedule{}
}

func (a *Announcer) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Run sends the scheduled gratuitous rounds until ctx is done.
func (a *Announcer) Run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		a.mu.Lock()
		next := a.sendDue(a.cfg.Now())
		a.mu.Unlock()
		d := time.Hour
		if !next.IsZero() {
			d = max(next.Sub(a.cfg.Now()), time.Millisecond)
		}
		t.Reset(d)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
	}
}

// sendDue sends every round due at now and returns the earliest next one
// (zero when none); a.mu must be held.
func (a *Announcer) sendDue(now time.Time) time.Time {
	var earliest time.Time
	for ip, s := range a.sched {
		if !s.next.After(now) {
			if r := a.resp[a.owned[ip]]; r != nil && r.has(ip) {
				if err := r.gratuitous(ip); err != nil {
					a.log.V(4).Info("Cannot send gratuitous announcement", "ip", ip.String(), "error", err.Error())
				}
			}
			s.step++
			switch {
			case s.step < len(a.cfg.Burst):
				s.next = s.start.Add(a.cfg.Burst[s.step])
			case a.cfg.Refresh > 0:
				s.next = now.Add(a.cfg.Refresh)
			default:
				delete(a.sched, ip)
				continue
			}
			a.sched[ip] = s
		}
		if earliest.IsZero() || s.next.Before(earliest) {
			earliest = s.next
		}
	}
	return earliest
}
