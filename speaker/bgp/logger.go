package bgp

import (
	"fmt"
	"sort"

	"github.com/go-logr/logr"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// Verbosity of gobgp's levels in logr terms: Info and Warn are internals of
// the BGP engine (V(2)); its Debug is V(6). Errors stay errors.
const (
	vInfo  = 2
	vDebug = 6
)

// peerEvent is what the logger bridge learns about one neighbour from
// gobgp's log lines: the reason a session is not established.
type peerEvent struct {
	// Neighbor is the neighbour address (gobgp's "Key" field).
	Neighbor string
	// Error is a connection error ("dial tcp …: i/o timeout") or a state
	// change reason ("notification-received open message error …").
	Error string
	// Up is true when the session became established.
	Up bool
}

// logBridge implements gobgp's pkg/log.Logger on logr. It reports the
// level Debug to gobgp so that gobgp emits its per-neighbour connection
// errors and state change reasons, which are the only place gobgp tells
// why a session is down (a wrong TCP-MD5 password shows as a dial
// timeout); those feed onEvent, and debug lines are printed only at V(6).
//
// Fatal never exits: gobgp calls it for errors it also returns (a policy
// that cannot be loaded), which the speaker reports instead of dying.
type logBridge struct {
	log     logr.Logger
	onEvent func(peerEvent)
}

var _ gobgplog.Logger = (*logBridge)(nil)

func newLogBridge(log logr.Logger, onEvent func(peerEvent)) *logBridge {
	if onEvent == nil {
		onEvent = func(peerEvent) {}
	}
	return &logBridge{log: log, onEvent: onEvent}
}

// keyValues flattens gobgp's fields into sorted logr key/value pairs.
func keyValues(fields gobgplog.Fields) []any {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		if k == gobgplog.FieldFacility {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	kv := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		v := fields[k]
		if s, ok := v.(fmt.Stringer); ok {
			v = s.String()
		} else if e, ok := v.(error); ok {
			v = e.Error()
		}
		kv = append(kv, k, v)
	}
	return kv
}

func errorOf(fields gobgplog.Fields) error {
	for _, k := range []string{"Error", "Err"} {
		switch e := fields[k].(type) {
		case error:
			return e
		case string:
			return fmt.Errorf("%s", e)
		}
	}
	return nil
}

// Panic implements gobgplog.Logger.
func (b *logBridge) Panic(msg string, fields gobgplog.Fields) {
	b.log.Error(errorOf(fields), "gobgp: "+msg, keyValues(fields)...)
	panic("gobgp: " + msg)
}

// Fatal implements gobgplog.Logger; it logs and returns (see logBridge).
func (b *logBridge) Fatal(msg string, fields gobgplog.Fields) {
	b.log.Error(errorOf(fields), "gobgp: "+msg, keyValues(fields)...)
}

// Error implements gobgplog.Logger.
func (b *logBridge) Error(msg string, fields gobgplog.Fields) {
	b.log.Error(errorOf(fields), "gobgp: "+msg, keyValues(fields)...)
}

// Warn implements gobgplog.Logger.
func (b *logBridge) Warn(msg string, fields gobgplog.Fields) {
	b.log.V(vInfo).Info("gobgp: "+msg, keyValues(fields)...)
}

// Info implements gobgplog.Logger.
func (b *logBridge) Info(msg string, fields gobgplog.Fields) {
	if msg == "Peer Up" {
		b.event(fields, "", true)
	}
	if msg == "Peer Down" {
		b.event(fields, "session down: "+fmt.Sprint(fields["Reason"]), false)
	}
	if b.log.V(vInfo).Enabled() {
		b.log.V(vInfo).Info("gobgp: "+msg, keyValues(fields)...)
	}
}

// Debug implements gobgplog.Logger.
func (b *logBridge) Debug(msg string, fields gobgplog.Fields) {
	switch msg {
	case "failed to connect":
		if err := errorOf(fields); err != nil {
			b.event(fields, "cannot connect: "+err.Error(), false)
		}
	case "state changed":
		// A session that falls back to idle or active before being
		// established says why in "reason" (notification received, open
		// message error, hold timer expired, …).
		if n := fmt.Sprint(fields["new"]); n == "BGP_FSM_IDLE" || n == "BGP_FSM_ACTIVE" {
			if r := fmt.Sprint(fields["reason"]); r != "" && r != "<nil>" && r != "idle-hold-timer-expired" &&
				r != "new-connection" && r != "dying" && r != "admin-down" {
				b.event(fields, r, false)
			}
		}
	}
	if b.log.V(vDebug).Enabled() {
		b.log.V(vDebug).Info("gobgp: "+msg, keyValues(fields)...)
	}
}

func (b *logBridge) event(fields gobgplog.Fields, err string, up bool) {
	key, _ := fields["Key"].(string)
	if key == "" {
		return
	}
	b.onEvent(peerEvent{Neighbor: key, Error: err, Up: up})
}

// SetLevel implements gobgplog.Logger; the level follows logr's verbosity.
func (b *logBridge) SetLevel(gobgplog.LogLevel) {}

// GetLevel implements gobgplog.Logger: always Debug (see logBridge).
func (b *logBridge) GetLevel() gobgplog.LogLevel { return gobgplog.DebugLevel }
