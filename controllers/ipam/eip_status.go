package ipam

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	alloc "github.com/openelb/openelb-operator/internal/ipam"
)

// Bounds of status.used: at most MaxUsedEntries addresses (the lowest in
// use) and MaxUsedBytes of keys and values, so an Eip with 50,000 addresses
// in use stays far below the 1.5 MiB object limit. usage always counts
// every address; UsedTruncated says when used is partial.
const (
	MaxUsedEntries = 1000
	MaxUsedBytes   = 128 << 10
)

// poolFacts is what the Eip status is derived from.
type poolFacts struct {
	known     bool             // the allocator has the pool
	invalid   error            // spec.address does not parse
	status    alloc.PoolStatus // when known
	holders   []alloc.ServiceKey
	holdersN  int // all Services holding addresses (deletion message)
	deleting  bool
	disabled  bool
	usedLimit int
	byteLimit int
}

// eipStatus derives an Eip's status. Conditions keep their transition time
// when their status does not change.
func eipStatus(e *networkv1alpha2.Eip, f poolFacts) networkv1alpha2.EipStatus {
	st := networkv1alpha2.EipStatus{ObservedGeneration: e.Generation}
	st.Conditions = append([]metav1.Condition(nil), e.Status.Conditions...)
	set := func(t string, ok bool, reason, msg string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: e.Generation})
	}
	if f.invalid != nil || !f.known {
		msg := "the address is not parsed yet"
		if f.invalid != nil {
			msg = f.invalid.Error()
		}
		set(networkv1alpha2.EipConditionReady, false, networkv1alpha2.EipReasonInvalidAddress, msg)
		return st
	}
	ps := f.status
	st.PoolSize = int(ps.Range.Size())
	st.FirstIP, st.LastIP = ps.Range.First.String(), ps.Range.Last.String()
	st.V4 = ps.Range.First.Is4()
	st.Usage = ps.Usage
	st.Occupied = ps.Occupied
	used, truncated := boundUsed(ps.Used, f.usedLimit, f.byteLimit)
	if len(used) > 0 {
		st.Used = used
	}
	switch {
	case f.deleting:
		set(networkv1alpha2.EipConditionReady, false, networkv1alpha2.EipReasonDeleting, "the Eip is being deleted: no new allocations")
	case ps.Conflict != "":
		set(networkv1alpha2.EipConditionReady, false, networkv1alpha2.EipReasonOverlap, fmt.Sprintf("the address overlaps the older Eip %s: no new allocations", ps.Conflict))
	case f.disabled:
		set(networkv1alpha2.EipConditionReady, false, networkv1alpha2.EipReasonDisabled, "spec.disable is true: addresses in use stay, no new allocations")
	default:
		set(networkv1alpha2.EipConditionReady, true, networkv1alpha2.EipReasonValid, fmt.Sprintf("%s: %d addresses", ps.Range, ps.Range.Size()))
	}
	st.Ready = ps.Conflict == "" && !f.deleting && !f.disabled
	if ps.Occupied {
		set(networkv1alpha2.EipConditionExhausted, true, networkv1alpha2.EipReasonFull, "every address is in use")
	} else {
		set(networkv1alpha2.EipConditionExhausted, false, networkv1alpha2.EipReasonAvailable, "free addresses left")
	}
	if ps.OutOfRangeCount > 0 {
		set(networkv1alpha2.EipConditionOutsideRange, true, networkv1alpha2.EipReasonInUse,
			fmt.Sprintf("%d addresses in use lie outside %s: %s", ps.OutOfRangeCount, ps.Range, addrList(ps.OutOfRange)))
	} else {
		meta.RemoveStatusCondition(&st.Conditions, networkv1alpha2.EipConditionOutsideRange)
	}
	if f.deleting && f.holdersN > 0 {
		set(networkv1alpha2.EipConditionDeletionBlocked, true, networkv1alpha2.EipReasonInUse,
			fmt.Sprintf("in use by %s: delete them or move them to another Eip", keysString(f.holders, f.holdersN)))
	} else {
		meta.RemoveStatusCondition(&st.Conditions, networkv1alpha2.EipConditionDeletionBlocked)
	}
	if truncated {
		set(networkv1alpha2.EipConditionUsedTruncated, true, networkv1alpha2.EipReasonBounded,
			fmt.Sprintf("status.used lists the lowest %d of %d addresses in use", len(used), ps.Usage))
	} else {
		meta.RemoveStatusCondition(&st.Conditions, networkv1alpha2.EipConditionUsedTruncated)
	}
	return st
}

// boundUsed renders status.used within the bounds.
func boundUsed(entries []alloc.UsedEntry, maxEntries, maxBytes int) (map[string]string, bool) {
	out := make(map[string]string, len(entries))
	size := 0
	for i, u := range entries {
		if i >= maxEntries {
			return out, true
		}
		k, v := u.Addr.String(), u.HoldersString()
		if size+len(k)+len(v) > maxBytes {
			return out, true
		}
		size += len(k) + len(v)
		out[k] = v
	}
	return out, false
}

func keysString(keys []alloc.ServiceKey, total int) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.String()
	}
	s := strings.Join(parts, ", ")
	if total > len(keys) {
		s += fmt.Sprintf(" and %d more", total-len(keys))
	}
	return s
}
