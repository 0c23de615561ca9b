// Package layer2 announces service addresses on the local link: the elected
// node answers ARP requests (IPv4, mdlayher/arp) and neighbour
// solicitations (IPv6, mdlayher/ndp, solicited-node group joined per
// address, DAD probes answered) with its interface's MAC, and sends
// gratuitous ARP (request and reply forms) or unsolicited neighbour
// advertisements with Override when it takes an address over.
//
// Mode is the speaker.Backend of the layer2 protocol. Every speaker elects
// the same announcer per address (speaker.Compute ranks the eligible nodes;
// the first one announces). Mode turns that decision into local ownership:
//
//   - losing an address stops answering for it at once;
//   - gaining an address whose previous announcer (in this speaker's last
//     decision) has died or left is immediate: that is failover;
//   - any other gain (a node returning, a new Service, eligibility changes,
//     a speaker start) waits ClaimDelay, and until the speakers' facts are
//     in sync, so that the previous announcer, which reaches the same
//     decision from the same inputs within a heartbeat, has stopped before
//     this one starts: two nodes never answer for one address at once.
//
// While waiting the old announcer's MAC stays in clients' caches and that
// node's kernel still accepts the traffic, so nothing is lost.
package layer2

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/speaker"
	"github.com/openelb/openelb-operator/speaker/internal/metrics"
)

// DefaultClaimDelay is how long a contested gain waits (3 heartbeats).
const DefaultClaimDelay = 300 * time.Millisecond

// Config configures a Mode.
type Config struct {
	Announcer AnnouncerConfig
	// ClaimDelay is the wait before a contested gain (DefaultClaimDelay).
	ClaimDelay time.Duration
	// Synced reports whether every live speaker evaluates eligibility from
	// the same facts (liveness.Synced); contested gains wait for it. Nil
	// means always.
	Synced func() bool
	Now    func() time.Time
}

// Mode is the layer2 backend.
type Mode struct {
	cfg Config
	log logr.Logger
	ann *Announcer

	mu        sync.Mutex
	last      *speaker.State
	owned     map[netip.Addr]string // address -> interface, as handed to the announcer
	eips      map[netip.Addr]string
	prev      map[netip.Addr]string // winner in the previous decision
	pending   map[netip.Addr]time.Time
	wasAlive  map[string]bool
	timer     *time.Timer
	shut      bool
	runCtx    context.Context
	announced map[netip.Addr]bool // metric series set
}

var (
	_ speaker.Backend  = (*Mode)(nil)
	_ speaker.Reporter = (*Mode)(nil)
)

// New returns the layer2 backend; Run must be started.
func New(cfg Config, log logr.Logger) *Mode {
	if cfg.ClaimDelay <= 0 {
		cfg.ClaimDelay = DefaultClaimDelay
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Announcer.Now == nil {
		cfg.Announcer.Now = cfg.Now
	}
	if cfg.Synced == nil {
		cfg.Synced = func() bool { return true }
	}
	return &Mode{cfg: cfg, log: log, ann: NewAnnouncer(cfg.Announcer, log),
		owned: map[netip.Addr]string{}, eips: map[netip.Addr]string{}, prev: map[netip.Addr]string{},
		pending: map[netip.Addr]time.Time{}, wasAlive: map[string]bool{}, announced: map[netip.Addr]bool{}}
}

// Protocol implements speaker.Backend.
func (m *Mode) Protocol() string { return networkv1alpha2.ProtocolLayer2 }

// Run drives the gratuitous schedule until ctx is done.
func (m *Mode) Run(ctx context.Context) {
	m.ann.Run(ctx)
}

// Announcers implements speaker.Reporter: the elected node.
func (m *Mode) Announcers(a speaker.Announcement) []string {
	if w := a.Winner(); w != "" {
		return []string{w}
	}
	return nil
}

// Owned returns the addresses this node answers for.
func (m *Mode) Owned() map[netip.Addr]string { return m.ann.Owned() }

// Apply implements speaker.Backend.
func (m *Mode) Apply(_ context.Context, s speaker.State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shut {
		return nil
	}
	m.last = &s
	now := m.cfg.Now()
	alive := map[string]bool{}
	for n, info := range s.Nodes {
		alive[n] = info.Alive
	}
	rejoined := false
	for n, a := range alive {
		if a && !m.wasAlive[n] && n != s.Self && len(m.wasAlive) > 0 {
			rejoined = true
		}
	}
	m.wasAlive = alive

	seen := make(map[netip.Addr]bool, len(s.Announcements))
	for _, a := range s.Announcements {
		seen[a.IP] = true
		w := a.Winner()
		prev, hadPrev := m.prev[a.IP]
		m.prev[a.IP] = w
		m.eips[a.IP] = a.Eip
		if w != s.Self || a.Interface == "" {
			m.release(a.IP)
			continue
		}
		if ifn, ok := m.owned[a.IP]; ok {
			m.owned[a.IP] = a.Interface
			if ifn != a.Interface {
				m.log.Info("Layer2 address moves to another interface", "ip", a.IP.String(), "from", ifn, "to", a.Interface)
				metrics.Announcing.DeleteLabelValues(a.IP.String(), a.Eip, networkv1alpha2.ProtocolLayer2, ifn)
				metrics.Announcing.WithLabelValues(a.IP.String(), a.Eip, networkv1alpha2.ProtocolLayer2, a.Interface).Set(1)
			}
			continue
		}
		if hadPrev && prev != "" && prev != s.Self && !alive[prev] {
			m.log.Info("Taking over layer2 address", "ip", a.IP.String(), "from", prev, "reason", "previous announcer dead or left", "interface", a.Interface)
			m.claim(a.IP, a.Interface)
			continue
		}
		if _, ok := m.pending[a.IP]; !ok {
			m.pending[a.IP] = now.Add(m.cfg.ClaimDelay)
		}
	}
	for ip := range m.owned {
		if !seen[ip] {
			m.release(ip)
		}
	}
	for ip := range m.prev {
		if !seen[ip] {
			delete(m.prev, ip)
			delete(m.pending, ip)
			delete(m.eips, ip)
		}
	}
	m.claimDue(now)
	err := m.ann.Set(m.owned)
	if rejoined && len(m.owned) > 0 {
		// A peer that was cut off may have announced our addresses.
		m.ann.Reannounce()
	}
	m.schedule(now)
	return err
}

// claimDue claims the pending addresses whose delay passed when the
// speakers are in sync; m.mu must be held.
func (m *Mode) claimDue(now time.Time) {
	if len(m.pending) == 0 {
		return
	}
	synced := m.cfg.Synced()
	for ip, due := range m.pending {
		if due.After(now) {
			continue
		}
		if !synced {
			m.pending[ip] = now.Add(m.cfg.ClaimDelay / 3)
			continue
		}
		ifn := m.interfaceOf(ip)
		if ifn == "" {
			delete(m.pending, ip)
			continue
		}
		m.log.Info("Announcing layer2 address", "ip", ip.String(), "interface", ifn)
		m.claim(ip, ifn)
	}
}

func (m *Mode) interfaceOf(ip netip.Addr) string {
	if m.last == nil {
		return ""
	}
	for _, a := range m.last.Announcements {
		if a.IP == ip && a.Winner() == m.last.Self {
			return a.Interface
		}
	}
	return ""
}

func (m *Mode) claim(ip netip.Addr, ifn string) {
	delete(m.pending, ip)
	m.owned[ip] = ifn
	metrics.ElectionWins.WithLabelValues(networkv1alpha2.ProtocolLayer2).Inc()
	metrics.Announcing.WithLabelValues(ip.String(), m.eips[ip], networkv1alpha2.ProtocolLayer2, ifn).Set(1)
}

func (m *Mode) release(ip netip.Addr) {
	delete(m.pending, ip)
	ifn, ok := m.owned[ip]
	if !ok {
		return
	}
	delete(m.owned, ip)
	m.log.Info("Stopped announcing layer2 address", "ip", ip.String())
	metrics.ElectionLosses.WithLabelValues(networkv1alpha2.ProtocolLayer2).Inc()
	metrics.Announcing.DeleteLabelValues(ip.String(), m.eips[ip], networkv1alpha2.ProtocolLayer2, ifn)
}

// schedule arms the timer for the earliest pending claim; m.mu must be held.
func (m *Mode) schedule(now time.Time) {
	var next time.Time
	for _, due := range m.pending {
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	if next.IsZero() {
		return
	}
	d := max(next.Sub(now), time.Millisecond)
	if m.timer == nil {
		m.timer = time.AfterFunc(d, m.onTimer)
		return
	}
	m.timer.Reset(d)
}

func (m *Mode) onTimer() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shut || m.last == nil {
		return
	}
	now := m.cfg.Now()
	m.claimDue(now)
	if err := m.ann.Set(m.owned); err != nil {
		m.log.Error(err, "Cannot announce layer2 addresses")
	}
	m.schedule(now)
}

// Shutdown implements speaker.Backend: stop answering everything at once.
func (m *Mode) Shutdown(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.shut = true
	if m.timer != nil {
		m.timer.Stop()
	}
	for ip := range m.owned {
		m.release(ip)
	}
	m.ann.Close()
	return nil
}
