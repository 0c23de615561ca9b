package speaker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

// NoAnnouncer is the annotation value of an address nobody announces.
const NoAnnouncer = "<none>"

// Event reasons on Services.
const (
	ReasonAnnouncerChanged = "AnnouncerChanged"
	ReasonNoAnnouncer      = "NoAnnouncer"
)

// A Record is what a Service should show about its announcers.
type Record struct {
	// Value of the announcer annotation ("" removes it).
	Value string
	// Unannounced lists "ip: reason" for addresses nobody announces.
	Unannounced []string
}

// Records computes, purely, the records this node writes. For every Service
// holding an address of a protocol with a Reporter the annotation
// openelb.kubesphere.io/announcer says who announces it: "node2" for one
// address, "203.0.113.20=node2;2001:db8::20=node1" for several, nodes
// joined by "," where several announce (bgp), "<none>" for an address
// nobody may announce. Exactly one node writes a Service's record, so that
// the API sees one write per change: the announcer of the Service's first
// announced address, or, when none is announced, the alive node with the
// smallest name, which also clears stale annotations of Services that no
// longer hold an address.
func Records(self string, in Inputs, d Desired, reporters map[string]Reporter) map[types.NamespacedName]Record {
	type entry struct {
		ip     netip.Addr
		nodes  []string
		reason string
	}
	per := map[types.NamespacedName][]entry{}
	for proto, anns := range d.ByProtocol {
		rep := reporters[proto]
		if rep == nil {
			continue
		}
		for _, a := range anns {
			for _, svc := range a.Services {
				per[svc] = append(per[svc], entry{ip: a.IP, nodes: rep.Announcers(a), reason: a.Reason})
			}
		}
	}
	fallback := ""
	for name, n := range d.Nodes {
		if n.Alive && (fallback == "" || name < fallback) {
			fallback = name
		}
	}
	out := map[types.NamespacedName]Record{}
	for svc, es := range per {
		slices.SortFunc(es, func(a, b entry) int { return a.ip.Compare(b.ip) })
		writer := fallback
		for _, e := range es {
			if len(e.nodes) > 0 {
				writer = e.nodes[0]
				break
			}
		}
		if writer != self {
			continue
		}
		var r Record
		parts := make([]string, 0, len(es))
		for _, e := range es {
			nodes := strings.Join(e.nodes, ",")
			if len(e.nodes) == 0 {
				nodes = NoAnnouncer
				r.Unannounced = append(r.Unannounced, e.ip.String()+": "+e.reason)
			}
			if len(es) == 1 {
				parts = append(parts, nodes)
			} else {
				parts = append(parts, e.ip.String()+"="+nodes)
			}
		}
		r.Value = strings.Join(parts, ";")
		out[svc] = r
	}
	if fallback == self {
		for _, s := range in.Services {
			k := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
			if _, ok := per[k]; !ok && s.Annotations[networkv1alpha2.AnnotationAnnouncer] != "" {
				out[k] = Record{}
			}
		}
	}
	return out
}

// Recorder writes the announcer annotation and Events of the Services this
// node records (Records), only when they change, from a rate-limited queue
// so that announcing never waits for the API.
type Recorder struct {
	self      string
	reader    client.Reader
	writer    client.Client
	events    record.EventRecorder
	reporters map[string]Reporter
	log       logr.Logger
	queue     workqueue.TypedRateLimitingInterface[types.NamespacedName]

	mu   sync.Mutex
	want map[types.NamespacedName]Record
}

// NewRecorder returns a Recorder; reporters maps a protocol to its backend.
func NewRecorder(self string, reader client.Reader, writer client.Client, events record.EventRecorder, reporters map[string]Reporter, log logr.Logger) *Recorder {
	return &Recorder{
		self: self, reader: reader, writer: writer, events: events, reporters: reporters, log: log,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName](),
			workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "speaker-recorder"}),
		want: map[types.NamespacedName]Record{},
	}
}

// Observe takes a new decision and queues the Services whose record
// differs from what they show.
func (r *Recorder) Observe(in Inputs, d Desired) {
	recs := Records(r.self, in, d, r.reporters)
	current := make(map[types.NamespacedName]string, len(in.Services))
	for _, s := range in.Services {
		current[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = s.Annotations[networkv1alpha2.AnnotationAnnouncer]
	}
	r.mu.Lock()
	r.want = recs
	r.mu.Unlock()
	for k, rec := range recs {
		if current[k] != rec.Value {
			r.queue.Add(k)
		}
	}
}

// Recheck queues a Service whose announcer annotation changed outside
// this node's decisions (another speaker wrote it while the speakers'
// views differed): if this node records it, the worker restores its value.
func (r *Recorder) Recheck(k types.NamespacedName) {
	r.mu.Lock()
	_, ok := r.want[k]
	r.mu.Unlock()
	if ok {
		r.queue.Add(k)
	}
}

// NeedLeaderElection: every speaker records its own share.
func (r *Recorder) NeedLeaderElection() bool { return false }

// Start runs the worker until ctx is done.
func (r *Recorder) Start(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	for {
		k, quit := r.queue.Get()
		if quit {
			return nil
		}
		err := r.write(ctx, k)
		switch {
		case err == nil:
			r.queue.Forget(k)
		case ctx.Err() != nil:
		default:
			r.log.V(1).Info("Cannot record announcer; retrying", "service", k.String(), "error", err.Error())
			r.queue.AddRateLimited(k)
		}
		r.queue.Done(k)
	}
}

func (r *Recorder) write(ctx context.Context, k types.NamespacedName) error {
	r.mu.Lock()
	rec, ok := r.want[k]
	r.mu.Unlock()
	if !ok {
		return nil // another node records it now
	}
	var svc corev1.Service
	if err := r.reader.Get(ctx, k, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	old := svc.Annotations[networkv1alpha2.AnnotationAnnouncer]
	if old == rec.Value {
		return nil
	}
	var val any = rec.Value
	if rec.Value == "" {
		val = nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": svc.ResourceVersion,
		"annotations":     map[string]any{networkv1alpha2.AnnotationAnnouncer: val},
	}})
	if err != nil {
		return err
	}
	if err := r.writer.Patch(ctx, &svc, client.RawPatch(types.MergePatchType, patch)); err != nil {
		if apierrors.IsConflict(err) {
			time.Sleep(10 * time.Millisecond) // the cache catches up; retried by the queue
		}
		return fmt.Errorf("patch announcer annotation: %w", err)
	}
	switch {
	case len(rec.Unannounced) > 0:
		r.events.Eventf(&svc, corev1.EventTypeWarning, ReasonNoAnnouncer, "Not announced: %s", strings.Join(rec.Unannounced, "; "))
	case rec.Value != "":
		msg := "Announced by " + rec.Value
		if old != "" {
			msg += " (was " + old + ")"
		}
		r.events.Event(&svc, corev1.EventTypeNormal, ReasonAnnouncerChanged, msg)
	}
	return nil
}
