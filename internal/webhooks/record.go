package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/ipam"
	"github.com/openelb/openelb-operator/internal/ipam/kube"
)

// RecordName is the ConfigMap (in the controller's namespace) that lists
// every Eip's range.
const RecordName = "openelb-eip-ranges"

// DefaultGrace is how long an entry without its Eip is kept: an admitted
// create is persisted within the webhook timeout, so an older entry without
// Eip is left over from a create that failed later.
const DefaultGrace = 30 * time.Second

// ErrContention is returned when the record could not be updated after
// several optimistic retries.
var ErrContention = errors.New("too many concurrent Eip changes")

// Record makes the overlap and default-Eip checks race-free across webhook
// replicas: every admitted create or address change writes its range into
// one ConfigMap with a resourceVersion precondition, after checking the
// ranges already there and the Eips that exist. Of two concurrent
// overlapping requests one update fails with a conflict, is retried, and
// sees the other's range. The controller removes the entry of a deleted
// Eip and collects entries whose create never completed.
type Record struct {
	Client    client.Client // writes the ConfigMap
	Reader    client.Reader // live reads (the API server, not a cache)
	Namespace string
	Grace     time.Duration
	Now       func() time.Time
}

type entry struct {
	Address string    `json:"address"`
	UID     types.UID `json:"uid,omitempty"`
	Default bool      `json:"default,omitempty"`
	Time    time.Time `json:"time"`
}

func (r *Record) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Record) grace() time.Duration {
	if r.Grace > 0 {
		return r.Grace
	}
	return DefaultGrace
}

func (r *Record) key() client.ObjectKey {
	return client.ObjectKey{Namespace: r.Namespace, Name: RecordName}
}

// load returns the ConfigMap (nil when absent) and its entries.
func (r *Record) load(ctx context.Context) (*corev1.ConfigMap, map[string]entry, error) {
	cm := &corev1.ConfigMap{}
	if err := r.Reader.Get(ctx, r.key(), cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, map[string]entry{}, nil
		}
		return nil, nil, fmt.Errorf("get ConfigMap %s: %w", r.key(), err)
	}
	entries := make(map[string]entry, len(cm.Data))
	for name, v := range cm.Data {
		var e entry
		if err := json.Unmarshal([]byte(v), &e); err != nil {
			continue // a damaged entry is dropped on the next write
		}
		entries[name] = e
	}
	return cm, entries, nil
}

// store writes the entries with the loaded ConfigMap's resourceVersion as
// precondition; retry reports a lost race.
func (r *Record) store(ctx context.Context, cm *corev1.ConfigMap, entries map[string]entry) (retry bool, err error) {
	data := make(map[string]string, len(entries))
	for name, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return false, err
		}
		data[name] = string(b)
	}
	if cm == nil {
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Namespace: r.Namespace, Name: RecordName,
			Labels: map[string]string{"app.kubernetes.io/name": "openelb", "app.kubernetes.io/component": "controller", "app.kubernetes.io/part-of": "openelb"},
		}, Data: data}
		err = r.Client.Create(ctx, cm)
	} else {
		cm = cm.DeepCopy()
		cm.Data = data
		err = r.Client.Update(ctx, cm) // carries resourceVersion: a precondition
	}
	switch {
	case err == nil:
		return false, nil
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		return true, nil
	}
	return false, fmt.Errorf("write ConfigMap %s: %w", r.key(), err)
}

// stale reports whether an entry no longer stands for an Eip: another Eip
// of that name exists, or none does, and the entry is older than the grace
// period (a create still in flight has a young entry).
func (r *Record) stale(name string, e entry, live map[string]*networkv1alpha2.Eip) bool {
	if r.now().Sub(e.Time) < r.grace() {
		return false
	}
	eip, ok := live[name]
	return !ok || (e.UID != "" && eip.UID != e.UID)
}

// Claim is one range a request wants to hold.
type Claim struct {
	Name    string
	UID     types.UID
	Range   ipam.Range
	Default bool
}

// Reserve checks a claim against the Eips that exist and the record, and
// writes it into the record (unless dryRun). It returns a denial message
// ("" when admitted).
func (r *Record) Reserve(ctx context.Context, c Claim, dryRun bool) (string, error) {
	for attempt := 0; attempt < 10; attempt++ {
		cm, entries, err := r.load(ctx)
		if err != nil {
			return "", err
		}
		var eips networkv1alpha2.EipList
		if err := r.Reader.List(ctx, &eips); err != nil {
			return "", fmt.Errorf("list eips: %w", err)
		}
		live := make(map[string]*networkv1alpha2.Eip, len(eips.Items))
		type other struct {
			name string
			rng  ipam.Range
			def  bool
		}
		var others []other
		for i := range eips.Items {
			e := &eips.Items[i]
			live[e.Name] = e
			if e.Name == c.Name {
				continue
			}
			if rng, err := ipam.ParseRange(e.Spec.Address); err == nil {
				others = append(others, other{e.Name, rng, kube.IsDefault(e)})
			}
		}
		for name, e := range entries {
			if r.stale(name, e, live) {
				delete(entries, name)
				continue
			}
			if name == c.Name {
				continue
			}
			if rng, err := ipam.ParseRange(e.Address); err == nil {
				others = append(others, other{name, rng, e.Default})
			}
		}
		sort.Slice(others, func(i, j int) bool { return others[i].name < others[j].name })
		for _, o := range others {
			if o.rng.Overlaps(c.Range) {
				return fmt.Sprintf("eip address overlap with %s (%s)", o.name, o.rng), nil
			}
		}
		if c.Default {
			for _, o := range others {
				if o.def && o.rng.Family() == c.Range.Family() {
					return fmt.Sprintf("already exists a default EIP: %s is the default %s Eip", o.name, o.rng.Family()), nil
				}
			}
		}
		if dryRun {
			return "", nil
		}
		entries[c.Name] = entry{Address: c.Range.String(), UID: c.UID, Default: c.Default, Time: r.now()}
		retry, err := r.store(ctx, cm, entries)
		if err != nil {
			return "", err
		}
		if !retry {
			return "", nil
		}
	}
	return "", fmt.Errorf("record %s: %w", r.key(), ErrContention)
}

// Remove drops the entry of a deleted Eip (when its uid matches).
func (r *Record) Remove(ctx context.Context, name string, uid types.UID) error {
	for attempt := 0; attempt < 10; attempt++ {
		cm, entries, err := r.load(ctx)
		if err != nil || cm == nil {
			return err
		}
		e, ok := entries[name]
		if !ok || (e.UID != "" && e.UID != uid) {
			return nil
		}
		delete(entries, name)
		retry, err := r.store(ctx, cm, entries)
		if err != nil || !retry {
			return err
		}
	}
	return fmt.Errorf("record %s: %w", r.key(), ErrContention)
}

// GC removes stale entries and adds missing ones for existing Eips (created
// while the webhook was not called). It returns how long until young
// entries without Eip become collectable (0: none).
func (r *Record) GC(ctx context.Context) (time.Duration, error) {
	cm, entries, err := r.load(ctx)
	if err != nil {
		return 0, err
	}
	var eips networkv1alpha2.EipList
	if err := r.Reader.List(ctx, &eips); err != nil {
		return 0, fmt.Errorf("list eips: %w", err)
	}
	live := make(map[string]*networkv1alpha2.Eip, len(eips.Items))
	for i := range eips.Items {
		live[eips.Items[i].Name] = &eips.Items[i]
	}
	changed := false
	var wait time.Duration
	for name, e := range entries {
		if r.stale(name, e, live) {
			delete(entries, name)
			changed = true
			continue
		}
		if eip, ok := live[name]; !ok || (e.UID != "" && eip.UID != e.UID) {
			if left := r.grace() - r.now().Sub(e.Time); wait == 0 || left < wait {
				wait = left
			}
		}
	}
	for name, e := range live {
		rng, err := ipam.ParseRange(e.Spec.Address)
		if err != nil {
			continue
		}
		old, ok := entries[name]
		settled := r.now().Sub(old.Time) >= r.grace()
		if !ok || (old.UID == e.UID && settled && (old.Address != rng.String() || old.Default != kube.IsDefault(e))) {
			entries[name] = entry{Address: rng.String(), UID: e.UID, Default: kube.IsDefault(e), Time: r.now()}
			changed = true
		}
	}
	if !changed {
		return wait, nil
	}
	if _, err := r.store(ctx, cm, entries); err != nil {
		return 0, err
	}
	return wait, nil
}
