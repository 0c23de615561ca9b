package liveness

import (
	"bytes"
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

type countObserver struct {
	mu       sync.Mutex
	rejected map[string]int
}

func (o *countObserver) Sent(string)     {}
func (o *countObserver) Received(string) {}
func (o *countObserver) Alive(int)       {}
func (o *countObserver) Rejected(r string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.rejected == nil {
		o.rejected = map[string]int{}
	}
	o.rejected[r]++
}
func (o *countObserver) count(r string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.rejected[r]
}

type member struct {
	l      *Liveness
	cancel context.CancelFunc
	done   chan struct{}
	obs    *countObserver
}

func start(t *testing.T, name string, key []byte, deadAfter time.Duration) *member {
	t.Helper()
	obs := &countObserver{}
	l, err := New(Config{Self: name, Key: key, Listen: "127.0.0.1:0", Interval: 20 * time.Millisecond, DeadAfter: deadAfter, Observer: obs}, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{l: l, cancel: cancel, done: make(chan struct{}), obs: obs}
	go func() { defer close(m.done); _ = l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-m.done })
	return m
}

func mesh(ms map[string]*member) {
	peers := map[string]netip.AddrPort{}
	for n, m := range ms {
		peers[n] = m.l.LocalAddr()
	}
	for _, m := range ms {
		m.l.SetPeers(peers)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func aliveSet(l *Liveness) map[string]string {
	out := map[string]string{}
	for n, f := range l.Alive() {
		out[n] = string(f)
	}
	return out
}

func TestMembershipFactsLeaveAndDeath(t *testing.T) {
	ms := map[string]*member{
		"node1": start(t, "node1", testKey, 200*time.Millisecond),
		"node2": start(t, "node2", testKey, 200*time.Millisecond),
		"node3": start(t, "node3", testKey, 30*time.Second), // death detection off: only leave can remove peers
	}
	for n, m := range ms {
		m.l.SetFacts([]byte("facts of " + n))
	}
	mesh(ms)
	eventually(t, "full mesh with facts, synced", func() bool {
		for n, m := range ms {
			a := aliveSet(m.l)
			if len(a) != 2 || !m.l.Synced() {
				return false
			}
			for p, f := range a {
				if p == n || f != "facts of "+p {
					return false
				}
			}
		}
		return true
	})

	// Facts change: propagated, and Synced is false until then.
	ms["node2"].l.SetFacts([]byte("new facts"))
	if ms["node2"].l.Synced() {
		t.Fatal("Synced right after a facts change: peers cannot hold them yet")
	}
	eventually(t, "new facts at node1 and node3", func() bool {
		return aliveSet(ms["node1"].l)["node2"] == "new facts" && aliveSet(ms["node3"].l)["node2"] == "new facts" && ms["node2"].l.Synced()
	})

	// Leave: node3 (which never expires peers) drops node1 at once.
	if err := ms["node1"].l.Leave(time.Second); err != nil {
		t.Fatalf("leave not acknowledged: %v", err)
	}
	if _, ok := aliveSet(ms["node3"].l)["node1"]; ok {
		t.Fatal("node3 still counts node1 alive after acknowledging its leave")
	}
	ms["node1"].cancel()
	<-ms["node1"].done

	// Death: node2 stops without leaving; node1 is gone already; node3 keeps
	// node2 (30 s), so check node2's death from a fresh observer instead.
	select {
	case <-ms["node2"].l.Changes():
	default:
	}
	if _, ok := aliveSet(ms["node2"].l)["node1"]; ok {
		t.Fatal("node2 still counts node1 alive after its leave")
	}
}

func TestDeathDetected(t *testing.T) {
	ms := map[string]*member{"a": start(t, "a", testKey, 100*time.Millisecond), "b": start(t, "b", testKey, 100*time.Millisecond)}
	mesh(ms)
	eventually(t, "a sees b", func() bool { _, ok := aliveSet(ms["a"].l)["b"]; return ok })
	ms["b"].cancel() // SIGKILL-like: no leave
	<-ms["b"].done
	eventually(t, "a declares b dead", func() bool { _, ok := aliveSet(ms["a"].l)["b"]; return !ok })
	// b restarts with a new incarnation on a new port: alive again, facts re-sent.
	b2 := start(t, "b", testKey, 100*time.Millisecond)
	b2.l.SetFacts([]byte("b2"))
	ms["b"] = b2
	mesh(ms)
	eventually(t, "a sees b again with its new facts", func() bool { return aliveSet(ms["a"].l)["b"] == "b2" })
}

func TestWrongKeyNeverAlive(t *testing.T) {
	ms := map[string]*member{"a": start(t, "a", testKey, 100*time.Millisecond), "b": start(t, "b", bytes.Repeat([]byte("x"), 32), 100*time.Millisecond)}
	mesh(ms)
	eventually(t, "authentication failures counted", func() bool { return ms["a"].obs.count("auth") >= 3 })
	if len(ms["a"].l.Alive()) != 0 || len(ms["b"].l.Alive()) != 0 {
		t.Fatal("peers with different keys count each other alive")
	}
}

func TestShortKeyRefused(t *testing.T) {
	if _, err := New(Config{Self: "a", Key: []byte("short"), Listen: "127.0.0.1:0"}, logr.Discard()); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
}

// TestAcceptRules drives handle() directly with crafted datagrams.
func TestAcceptRules(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	obs := &countObserver{}
	l, err := New(Config{Self: "a", Key: testKey, Listen: "127.0.0.1:0", Now: func() time.Time { return now }, Observer: obs}, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.conn.Close()
	l.SetPeers(map[string]netip.AddrPort{"b": netip.MustParseAddrPort("127.0.0.1:9")})
	from := netip.MustParseAddrPort("127.0.0.1:9")
	pkt := func(m message, key []byte) []byte {
		b, err := m.marshal(key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	inc := uint64(now.Add(-time.Hour).UnixNano())
	beatMsg := func(ts int64) message {
		return message{typ: typeBeat, sender: "b", recipient: "a", incarnation: inc, timestamp: ts, payload: beat{factsDigest: 7}.marshal()}
	}
	good := pkt(beatMsg(now.UnixNano()), testKey)
	l.handle(good, from)
	if _, ok := l.Alive()["b"]; !ok {
		t.Fatal("valid beat not accepted")
	}
	steps := []struct {
		name   string
		pkt    []byte
		reason string
	}{
		{"replayed datagram", good, "replay"},
		{"older timestamp", pkt(beatMsg(now.UnixNano()-1), testKey), "replay"},
		{"wrong key", pkt(beatMsg(now.UnixNano()+1), []byte("another key of 32 bytes........")), "auth"},
		{"tampered", func() []byte { b := pkt(beatMsg(now.UnixNano()+2), testKey); b[len(b)-40] ^= 1; return b }(), "auth"},
		{"meant for another node", pkt(message{typ: typeBeat, sender: "b", recipient: "c", incarnation: inc, timestamp: now.UnixNano() + 3, payload: beat{}.marshal()}, testKey), "wrong-recipient"},
		{"unknown sender", pkt(message{typ: typeBeat, sender: "z", recipient: "a", incarnation: inc, timestamp: now.UnixNano() + 4, payload: beat{}.marshal()}, testKey), "unknown-sender"},
		{"clock far ahead", pkt(beatMsg(now.Add(2*time.Minute).UnixNano()), testKey), "clock-skew"},
		{"older incarnation", pkt(message{typ: typeBeat, sender: "b", recipient: "a", incarnation: inc - 1, timestamp: now.UnixNano() + 5, payload: beat{}.marshal()}, testKey), "stale-incarnation"},
		{"garbage", []byte("hello"), "malformed"},
		{"foreign protocol", append([]byte("XXXX"), make([]byte, 80)...), "foreign"},
	}
	for _, s := range steps {
		before := obs.count(s.reason)
		l.handle(s.pkt, from)
		if obs.count(s.reason) != before+1 {
			t.Errorf("%s: not rejected as %q (counts %v)", s.name, s.reason, obs.rejected)
		}
	}
}

func TestWireRoundTrip(t *testing.T) {
	m := message{typ: typeFacts, sender: "node-1.example", recipient: "node2", incarnation: 42, timestamp: 43, payload: []byte(`{"eip":{"i":"eth0","ok":true}}`)}
	b, err := m.marshal(testKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := unmarshal(b, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if got.typ != m.typ || got.sender != m.sender || got.recipient != m.recipient || got.incarnation != 42 || got.timestamp != 43 || string(got.payload) != string(m.payload) {
		t.Fatalf("round trip: %+v", got)
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x20
		if _, err := unmarshal(c, testKey); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	big := m
	big.payload = make([]byte, maxPacket)
	if _, err := big.marshal(testKey); err == nil {
		t.Fatal("oversized message encoded")
	}
}

// TestNotSyncedUntilPeersSeeUs: with one-way connectivity (b hears a, a
// never hears b) b must not consider itself in sync: a does not count it
// alive, so a may still announce what b would claim.
func TestNotSyncedUntilPeersSeeUs(t *testing.T) {
	a := start(t, "a", testKey, 200*time.Millisecond)
	b := start(t, "b", testKey, 200*time.Millisecond)
	a.l.SetFacts([]byte("a"))
	b.l.SetFacts([]byte("b"))
	a.l.SetPeers(map[string]netip.AddrPort{"b": b.l.LocalAddr()})
	b.l.SetPeers(map[string]netip.AddrPort{"a": netip.MustParseAddrPort("127.0.0.1:9")}) // b's beats go nowhere
	eventually(t, "b hears a", func() bool { _, ok := b.l.Alive()["a"]; return ok })
	time.Sleep(100 * time.Millisecond) // past b's join period (5 × 20 ms)
	if b.l.Synced() {
		t.Fatal("b counts itself in sync although a never heard it")
	}
	b.l.SetPeers(map[string]netip.AddrPort{"a": a.l.LocalAddr()})
	eventually(t, "b in sync once a hears it", b.l.Synced)
}

// TestStallDoesNotKillPeers: when this process was stalled, the first
// check afterwards leaves the peers alone (their beats are still queued);
// the next one applies the rule.
func TestStallDoesNotKillPeers(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l, err := New(Config{Self: "a", Key: testKey, Listen: "127.0.0.1:0", Now: func() time.Time { return now }}, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.conn.Close()
	l.SetPeers(map[string]netip.AddrPort{"b": netip.MustParseAddrPort("127.0.0.1:9")})
	b, _ := (&message{typ: typeBeat, sender: "b", recipient: "a", incarnation: 1, timestamp: now.UnixNano(), payload: beat{}.marshal()}).marshal(testKey)
	l.handle(b, netip.MustParseAddrPort("127.0.0.1:9"))
	l.expire()
	now = now.Add(time.Second) // the process was frozen for a second
	l.expire()
	if _, ok := l.Alive()["b"]; !ok {
		t.Fatal("peer declared dead by the first check after our own stall")
	}
	now = now.Add(25 * time.Millisecond)
	l.expire()
	if _, ok := l.Alive()["b"]; ok {
		t.Fatal("peer silent for a second still alive after the next check")
	}
}
