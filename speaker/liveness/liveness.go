// Package liveness tells every speaker, within a few hundred milliseconds,
// which other speakers are alive, and carries each speaker's eligibility
// facts to the others. It replaces OpenELB's memberlist (4–6 s detection,
// public default key) with small authenticated UDP heartbeats.
//
// Every Interval (100 ms) a speaker sends each peer (the other Nodes'
// InternalIPs, port --liveness-port) a heartbeat; a peer not heard from for
// DeadAfter (5 intervals) is dead. A speaker stopping on SIGTERM sends
// "leave" and waits (bounded) for every live peer to acknowledge it, so its
// successors take over at once instead of after DeadAfter.
//
// Every datagram carries sender, recipient, the sender's incarnation (its
// start time) and a timestamp, and ends with HMAC-SHA256 over all of it with
// the shared key (Secret openelb-speaker-key). A receiver drops a datagram
// whose MAC is wrong, whose recipient is not itself, whose sender is not a
// known node, whose timestamp is not newer than the last one accepted from
// that sender (replay) or lies more than MaxSkew from its own clock.
//
// Facts (opaque bytes, the speaker core's per-Eip interface facts) are not
// repeated in every heartbeat: a heartbeat carries the digest of the
// sender's facts and, for the recipient, the digest of the recipient's facts
// the sender holds; a speaker whose facts a peer does not hold sends them in
// a facts message (at most once per interval per peer).
package liveness

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Defaults.
const (
	DefaultInterval  = 100 * time.Millisecond
	DefaultDeadAfter = 5 * DefaultInterval
	DefaultMaxSkew   = time.Minute
	// DefaultLeaveTimeout bounds how long Leave waits for acknowledgements.
	DefaultLeaveTimeout = time.Second
	// MinKeyLen is the shortest accepted key.
	MinKeyLen = 16
)

// Config configures a Liveness.
type Config struct {
	// Self is this node's name.
	Self string
	// Key is the shared authentication key (at least MinKeyLen bytes).
	Key []byte
	// Listen is the local UDP address (":7946").
	Listen string
	// Interval between heartbeats; DeadAfter without one marks a peer dead.
	Interval, DeadAfter time.Duration
	// MaxSkew is the largest accepted clock difference.
	MaxSkew time.Duration
	// JoinPeriod after the start during which Synced is false, so that a
	// starting speaker hears its peers before it claims anything
	// (default 5 intervals).
	JoinPeriod time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Observer receives counters (may be nil).
	Observer Observer
}

// Observer is told about traffic, for metrics.
type Observer interface {
	Sent(kind string)
	Received(kind string)
	Rejected(reason string)
	Alive(n int)
}

type nopObserver struct{}

func (nopObserver) Sent(string)     {}
func (nopObserver) Received(string) {}
func (nopObserver) Rejected(string) {}
func (nopObserver) Alive(int)       {}

// Liveness tracks the other speakers.
type Liveness struct {
	cfg     Config
	log     logr.Logger
	inc     uint64
	conn    *net.UDPConn
	started time.Time

	mu          sync.Mutex
	lastTS      int64 // last timestamp sent (strictly increasing)
	facts       []byte
	factsDigest uint64
	peers       map[string]*peer
	leaving     bool
	lastCheck   time.Time
	skipped     bool
	changes     chan struct{}
	acks        chan struct{}
}

type peer struct {
	addr      netip.AddrPort
	inc       uint64
	lastTS    int64
	lastHeard time.Time
	alive     bool
	leftInc   uint64 // incarnation that said leave
	digest    uint64 // the peer's own facts digest, as advertised
	facts     []byte // the peer's facts as held
	heldDig   uint64 // digest of facts
	echoInc   uint64 // our incarnation as the peer last heard it
	echoDig   uint64 // our facts digest the peer holds
	factsSent time.Time
	acked     bool
	seesMe    time.Time // since when the peer says it counts us alive (zero: it does not)
}

// New opens the UDP socket.
func New(cfg Config, log logr.Logger) (*Liveness, error) {
	if len(cfg.Key) < MinKeyLen {
		return nil, fmt.Errorf("liveness key: %d bytes, need at least %d", len(cfg.Key), MinKeyLen)
	}
	if cfg.Self == "" || len(cfg.Self) > maxName {
		return nil, errors.New("liveness: invalid node name")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.DeadAfter <= 0 {
		cfg.DeadAfter = 5 * cfg.Interval
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.JoinPeriod <= 0 {
		cfg.JoinPeriod = 5 * cfg.Interval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	addr, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("liveness listen address %q: %w", cfg.Listen, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("liveness listen on %s: %w", cfg.Listen, err)
	}
	return &Liveness{
		cfg:     cfg,
		log:     log,
		inc:     uint64(cfg.Now().UnixNano()),
		started: cfg.Now(),
		conn:    conn,
		peers:   map[string]*peer{},
		changes: make(chan struct{}, 1),
		acks:    make(chan struct{}, 1),
	}, nil
}

// LocalAddr is the bound socket address.
func (l *Liveness) LocalAddr() netip.AddrPort {
	return l.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Changes is signalled (coalesced) when a peer becomes alive or dead, or its
// facts change.
func (l *Liveness) Changes() <-chan struct{} { return l.changes }

func (l *Liveness) notify() {
	select {
	case l.changes <- struct{}{}:
	default:
	}
}

// SetPeers sets the other speakers' addresses (Nodes' InternalIPs with the
// liveness port). Peers no longer listed are forgotten.
func (l *Liveness) SetPeers(peers map[string]netip.AddrPort) {
	l.mu.Lock()
	defer l.mu.Unlock()
	changed := false
	for name, p := range l.peers {
		if _, ok := peers[name]; !ok {
			changed = changed || p.alive
			delete(l.peers, name)
		}
	}
	for name, a := range peers {
		if name == l.cfg.Self {
			continue
		}
		if p, ok := l.peers[name]; ok {
			p.addr = a
			continue
		}
		l.peers[name] = &peer{addr: a}
	}
	if changed {
		l.notify()
	}
}

// SetFacts sets this speaker's facts; peers receive them within an interval
// or two.
func (l *Liveness) SetFacts(facts []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := digest(facts)
	if d == l.factsDigest {
		return
	}
	l.facts, l.factsDigest = append([]byte(nil), facts...), d
}

// Alive returns the live peers with the last facts received from each (nil
// when none was received from its current incarnation). The facts may lag
// the peer's current ones for an interval or two: Synced says when they do
// not.
func (l *Liveness) Alive() map[string][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]byte, len(l.peers))
	for name, p := range l.peers {
		if p.alive {
			out[name] = p.facts
		}
	}
	return out
}

// Synced reports whether this speaker and its live peers see the same
// world: it holds the current facts of every live peer, and every live peer
// holds this speaker's current facts and has counted it alive for at least
// an interval (time enough to act on it). Only then do all of them evaluate
// eligibility alike. It is false during the join period after the start.
func (l *Liveness) Synced() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.Now().Sub(l.started) < l.cfg.JoinPeriod {
		return false
	}
	now := l.cfg.Now()
	for _, p := range l.peers {
		if !p.alive {
			continue
		}
		if p.heldDig != p.digest || p.echoDig != l.factsDigest || p.echoInc != l.inc ||
			p.seesMe.IsZero() || now.Sub(p.seesMe) < l.cfg.Interval {
			return false
		}
	}
	return true
}

// Run sends heartbeats, receives the peers' and detects deaths until ctx is
// done; it closes the socket when it returns. Call Leave before cancelling
// ctx for a planned stop.
func (l *Liveness) Run(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		l.conn.Close()
	}()
	go l.receive()
	tick := time.NewTicker(l.cfg.Interval)
	defer tick.Stop()
	check := time.NewTicker(l.cfg.Interval / 4)
	defer check.Stop()
	l.sendBeats()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			l.sendBeats()
		case <-check.C:
			l.expire()
		}
	}
}

func (l *Liveness) expire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	// After this process itself stalled (CPU starvation, a long GC pause),
	// the peers' heartbeats wait in the socket buffer: give the receiver a
	// check period to drain them instead of declaring everyone dead.
	// Only one check in a row is skipped, so that continuous starvation
	// cannot hide deaths.
	stalled := !l.lastCheck.IsZero() && now.Sub(l.lastCheck) > l.cfg.Interval/2
	l.lastCheck = now
	if stalled && !l.skipped {
		l.skipped = true
		return
	}
	l.skipped = false
	changed := false
	for name, p := range l.peers {
		if p.alive && now.Sub(p.lastHeard) > l.cfg.DeadAfter {
			p.alive, p.seesMe = false, time.Time{}
			changed = true
			l.log.Info("Speaker peer dead", "peer", name, "silentFor", now.Sub(p.lastHeard).String())
		}
	}
	if changed {
		l.cfg.Observer.Alive(l.countAlive())
		l.notify()
	}
}

func (l *Liveness) countAlive() int {
	n := 0
	for _, p := range l.peers {
		if p.alive {
			n++
		}
	}
	return n
}

// stamp returns a timestamp strictly greater than the previous one.
func (l *Liveness) stamp() int64 {
	ts := l.cfg.Now().UnixNano()
	if ts <= l.lastTS {
		ts = l.lastTS + 1
	}
	l.lastTS = ts
	return ts
}

type outgoing struct {
	to  netip.AddrPort
	msg *message
}

func (l *Liveness) sendBeats() {
	l.mu.Lock()
	if l.leaving {
		l.mu.Unlock()
		return
	}
	out := make([]outgoing, 0, len(l.peers))
	for name, p := range l.peers {
		b := beat{factsDigest: l.factsDigest, echoInc: p.inc, seesYou: p.alive}
		if p.heldDig != 0 {
			b.echoDigest = p.heldDig
		}
		out = append(out, outgoing{to: p.addr, msg: l.msg(typeBeat, name, b.marshal())})
	}
	l.mu.Unlock()
	l.send(out, "beat")
}

// msg builds a message; l.mu must be held.
func (l *Liveness) msg(typ byte, to string, payload []byte) *message {
	return &message{typ: typ, sender: l.cfg.Self, recipient: to, incarnation: l.inc, timestamp: l.stamp(), payload: payload}
}

func (l *Liveness) send(out []outgoing, kind string) {
	for _, o := range out {
		if !o.to.IsValid() {
			continue
		}
		b, err := o.msg.marshal(l.cfg.Key)
		if err != nil {
			l.log.Error(err, "Cannot encode liveness message", "peer", o.msg.recipient)
			continue
		}
		if _, err := l.conn.WriteToUDPAddrPort(b, o.to); err != nil {
			l.log.V(4).Info("Cannot send liveness message", "peer", o.msg.recipient, "error", err.Error())
			continue
		}
		l.cfg.Observer.Sent(kind)
	}
}

func (l *Liveness) receive() {
	buf := make([]byte, maxPacket+1)
	for {
		n, from, err := l.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		l.handle(buf[:n], from)
	}
}

func (l *Liveness) handle(b []byte, from netip.AddrPort) {
	m, err := unmarshal(b, l.cfg.Key)
	if err != nil {
		l.cfg.Observer.Rejected(rejectReason(err))
		return
	}
	var reply []outgoing
	var kind string
	l.mu.Lock()
	func() {
		p, reason := l.accept(m)
		if reason != "" {
			l.cfg.Observer.Rejected(reason)
			return
		}
		now := l.cfg.Now()
		switch m.typ {
		case typeBeat:
			kind = "beat"
			bt, err := parseBeat(m.payload)
			if err != nil {
				l.cfg.Observer.Rejected("malformed")
				return
			}
			changed := !p.alive || p.digest != bt.factsDigest
			if !p.alive {
				l.log.Info("Speaker peer alive", "peer", m.sender, "address", from.String())
			}
			p.alive, p.lastHeard = true, now
			p.digest, p.echoInc, p.echoDig = bt.factsDigest, bt.echoInc, bt.echoDigest
			switch {
			case !bt.seesYou:
				p.seesMe = time.Time{}
			case p.seesMe.IsZero():
				p.seesMe = now
				changed = true
			}
			if changed {
				l.cfg.Observer.Alive(l.countAlive())
				l.notify()
			}
			if (bt.echoDigest != l.factsDigest || bt.echoInc != l.inc) && l.facts != nil && now.Sub(p.factsSent) >= l.cfg.Interval && !l.leaving {
				p.factsSent = now
				reply = append(reply, outgoing{to: p.addr, msg: l.msg(typeFacts, m.sender, l.facts)})
			}
		case typeFacts:
			kind = "facts"
			d := digest(m.payload)
			if d != p.heldDig {
				p.facts, p.heldDig = append([]byte(nil), m.payload...), d
				if p.alive {
					l.notify()
				}
			}
		case typeLeave:
			kind = "leave"
			p.leftInc = m.incarnation
			p.seesMe = time.Time{}
			if p.alive {
				p.alive = false
				l.log.Info("Speaker peer left", "peer", m.sender)
				l.cfg.Observer.Alive(l.countAlive())
				l.notify()
			}
			reply = append(reply, outgoing{to: p.addr, msg: l.msg(typeLeaveAck, m.sender, nil)})
		case typeLeaveAck:
			kind = "leave-ack"
			if l.leaving && !p.acked {
				p.acked = true
				select {
				case l.acks <- struct{}{}:
				default:
				}
			}
		default:
			l.cfg.Observer.Rejected("malformed")
		}
	}()
	l.mu.Unlock()
	if kind != "" {
		l.cfg.Observer.Received(kind)
	}
	l.send(reply, map[byte]string{typeFacts: "facts", typeLeaveAck: "leave-ack"}[typeOf(reply)])
}

func typeOf(o []outgoing) byte {
	if len(o) == 0 {
		return 0
	}
	return o[0].msg.typ
}

// accept applies the replay and identity rules; l.mu must be held.
func (l *Liveness) accept(m *message) (*peer, string) {
	if m.recipient != l.cfg.Self {
		return nil, "wrong-recipient"
	}
	p, ok := l.peers[m.sender]
	if !ok {
		return nil, "unknown-sender"
	}
	now := l.cfg.Now().UnixNano()
	if d := now - m.timestamp; d > int64(l.cfg.MaxSkew) || -d > int64(l.cfg.MaxSkew) {
		return nil, "clock-skew"
	}
	if m.timestamp <= p.lastTS {
		return nil, "replay"
	}
	if m.incarnation < p.inc || (m.incarnation == p.leftInc && m.typ != typeLeave && m.typ != typeLeaveAck) {
		return nil, "stale-incarnation"
	}
	p.lastTS = m.timestamp
	if m.incarnation != p.inc {
		// A restarted peer: what we held of it is void.
		p.inc, p.facts, p.heldDig, p.digest, p.echoInc, p.echoDig = m.incarnation, nil, 0, 0, 0, 0
		p.seesMe = time.Time{}
	}
	return p, ""
}

func rejectReason(err error) string {
	switch {
	case errors.Is(err, errMAC):
		return "auth"
	case errors.Is(err, errMagic):
		return "foreign"
	default:
		return "malformed"
	}
}

// Leave tells every peer that this speaker stops, so that they take over its
// addresses at once, and waits until every live peer acknowledged it or
// timeout passes. Heartbeats stop for good.
func (l *Liveness) Leave(timeout time.Duration) error {
	l.mu.Lock()
	l.leaving = true
	var out []outgoing
	waiting := map[string]bool{}
	for name, p := range l.peers {
		p.acked = false
		out = append(out, outgoing{to: p.addr, msg: l.msg(typeLeave, name, nil)})
		if p.alive {
			waiting[name] = true
		}
	}
	l.mu.Unlock()
	if len(out) == 0 {
		return nil
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	resend := time.NewTicker(20 * time.Millisecond)
	defer resend.Stop()
	for attempt := 0; ; attempt++ {
		if attempt < 5 { // a lost datagram must not cost DeadAfter
			l.mu.Lock()
			for _, o := range out {
				o.msg.timestamp = l.stamp()
			}
			l.mu.Unlock()
			l.send(out, "leave")
		}
		l.mu.Lock()
		pending := 0
		for name := range waiting {
			if p, ok := l.peers[name]; ok && !p.acked {
				pending++
			}
		}
		l.mu.Unlock()
		if pending == 0 {
			return nil
		}
		select {
		case <-deadline.C:
			return fmt.Errorf("leave: %d of %d peers did not acknowledge within %s", pending, len(waiting), timeout)
		case <-l.acks:
		case <-resend.C:
		}
	}
}

// Snapshot returns the peers' states for diagnostics.
func (l *Liveness) Snapshot() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]bool{}
	for n, p := range l.peers {
		out[n] = p.alive
	}
	return maps.Clone(out)
}
