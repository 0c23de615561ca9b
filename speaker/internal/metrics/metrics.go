// Package metrics defines the speaker's Prometheus metrics, registered with
// controller-runtime's registry and served on --metrics-bind-address.
package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

const ns = "openelb_speaker"

var (
	// Announcing is 1 for every address this node announces, by protocol.
	Announcing = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: ns, Name: "announcing",
		Help: "1 for each address this node announces (layer2: this node is the elected announcer).",
	}, []string{"ip", "eip", "protocol", "interface"})
	// ElectionWins counts the addresses this node started to announce.
	ElectionWins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "election_wins_total",
		Help: "Addresses this node took over as layer2 announcer.",
	}, []string{"protocol"})
	// ElectionLosses counts the addresses this node stopped announcing.
	ElectionLosses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "election_losses_total",
		Help: "Addresses this node stopped announcing.",
	}, []string{"protocol"})
	// GratuitousSent counts gratuitous ARP packets and unsolicited NAs.
	GratuitousSent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "layer2_gratuitous_sent_total",
		Help: "Gratuitous ARP packets (request and reply forms) and unsolicited neighbour advertisements sent.",
	}, []string{"family"})
	// RequestsReceived counts ARP requests and NSs for addresses this node announces.
	RequestsReceived = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "layer2_requests_received_total",
		Help: "ARP requests and neighbour solicitations received for announced addresses.",
	}, []string{"family"})
	// RequestsAnswered counts ARP replies and solicited NAs sent.
	RequestsAnswered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "layer2_requests_answered_total",
		Help: "ARP replies and neighbour advertisements sent in answer to requests.",
	}, []string{"family"})
	// Conflicts counts gratuitous announcements of our addresses by another MAC.
	Conflicts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "layer2_conflicts_total",
		Help: "Gratuitous ARP or unsolicited NA seen from another MAC for an address this node announces.",
	}, []string{"family"})
	// LivenessPeers is the number of live peer speakers.
	LivenessPeers = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Name: "liveness_peers_alive",
		Help: "Other speakers currently alive.",
	})
	// LivenessMessages counts liveness datagrams by direction and kind.
	LivenessMessages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "liveness_messages_total",
		Help: "Liveness datagrams sent and received, by kind.",
	}, []string{"direction", "kind"})
	// LivenessRejected counts dropped liveness datagrams by reason.
	LivenessRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "liveness_rejected_total",
		Help: "Liveness datagrams dropped, by reason (auth, replay, clock-skew, unknown-sender, ...).",
	}, []string{"reason"})
	// Recomputes counts the core's decisions.
	Recomputes = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Name: "recomputes_total",
		Help: "Desired-state computations.",
	})
	// ApplyErrors counts failed backend applies.
	ApplyErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "apply_errors_total",
		Help: "Backend applies that failed (retried).",
	}, []string{"protocol"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(Announcing, ElectionWins, ElectionLosses, GratuitousSent, RequestsReceived,
		RequestsAnswered, Conflicts, LivenessPeers, LivenessMessages, LivenessRejected, Recomputes, ApplyErrors)
}

// LivenessObserver feeds liveness counters into the metrics.
type LivenessObserver struct{}

// livenessCounters caches the counters of the few message kinds (a lookup
// by labels per heartbeat would cost more than sending it).
var livenessCounters sync.Map // "direction/kind" -> prometheus.Counter

func livenessCounter(direction, kind string) prometheus.Counter {
	k := direction + "/" + kind
	if c, ok := livenessCounters.Load(k); ok {
		return c.(prometheus.Counter)
	}
	c, _ := livenessCounters.LoadOrStore(k, LivenessMessages.WithLabelValues(direction, kind))
	return c.(prometheus.Counter)
}

// Sent implements liveness.Observer.
func (LivenessObserver) Sent(kind string) { livenessCounter("sent", kind).Inc() }

// Received implements liveness.Observer.
func (LivenessObserver) Received(kind string) { livenessCounter("received", kind).Inc() }

// Rejected implements liveness.Observer.
func (LivenessObserver) Rejected(reason string) { LivenessRejected.WithLabelValues(reason).Inc() }

// Alive implements liveness.Observer.
func (LivenessObserver) Alive(n int) { LivenessPeers.Set(float64(n)) }
