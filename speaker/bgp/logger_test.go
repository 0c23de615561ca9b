package bgp

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

func TestLogBridgeEvents(t *testing.T) {
	var got []peerEvent
	b := newLogBridge(logr.Discard(), func(e peerEvent) { got = append(got, e) })
	if b.GetLevel() != gobgplog.DebugLevel {
		t.Fatal("the bridge must ask gobgp for debug messages (connection errors are debug)")
	}
	b.Debug("failed to connect", gobgplog.Fields{"Key": "198.51.100.1", "Error": errors.New("dial tcp: i/o timeout")})
	b.Debug("state changed", gobgplog.Fields{"Key": "198.51.100.1", "new": "BGP_FSM_IDLE", "old": "BGP_FSM_OPENSENT", "reason": "notification-received open message error bad peer as"})
	b.Debug("state changed", gobgplog.Fields{"Key": "198.51.100.1", "new": "BGP_FSM_ACTIVE", "old": "BGP_FSM_IDLE", "reason": "idle-hold-timer-expired"})
	b.Debug("try to connect", gobgplog.Fields{"Key": "198.51.100.1"})
	b.Info("Peer Up", gobgplog.Fields{"Key": "198.51.100.1"})
	b.Info("Peer Down", gobgplog.Fields{"Key": "198.51.100.1", "Reason": "hold-timer-expired"})
	b.Warn("no key", gobgplog.Fields{})
	want := []peerEvent{
		{Neighbor: "198.51.100.1", Error: "cannot connect: dial tcp: i/o timeout"},
		{Neighbor: "198.51.100.1", Error: "notification-received open message error bad peer as"},
		{Neighbor: "198.51.100.1", Up: true},
		{Neighbor: "198.51.100.1", Error: "session down: hold-timer-expired"},
	}
	if len(got) != len(want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// Fatal logs and returns: gobgp also returns the error.
	b.Fatal("failed to create routing policy", gobgplog.Fields{"Error": errors.New("x")})
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "boom") {
			t.Errorf("Panic did not panic: %v", r)
		}
	}()
	b.Panic("boom", nil)
}

func TestKeyValues(t *testing.T) {
	kv := keyValues(gobgplog.Fields{"b": 2, "a": errors.New("e"), gobgplog.FieldFacility: "config"})
	if len(kv) != 4 || kv[0] != "a" || kv[1] != "e" || kv[2] != "b" || kv[3] != 2 {
		t.Errorf("keyValues = %v", kv)
	}
}
