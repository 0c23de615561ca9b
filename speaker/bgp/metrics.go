package bgp

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

const metricsNS = "openelb_speaker_bgp"

var (
	// sessionUp is 1 while a session is established.
	sessionUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNS, Name: "session_up",
		Help: "1 when the BGP session with the neighbour is established, else 0.",
	}, []string{"peer", "neighbor"})
	// sessionState is the FSM state number.
	sessionState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNS, Name: "session_state",
		Help: "BGP FSM state of the session: 1 idle, 2 connect, 3 active, 4 opensent, 5 openconfirm, 6 established.",
	}, []string{"peer", "neighbor"})
	// advertisedRoutes counts routes sent to each neighbour.
	advertisedRoutes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNS, Name: "advertised_routes",
		Help: "Routes advertised to the neighbour.",
	}, []string{"peer", "neighbor"})
	// receivedRoutes counts routes received (and rejected) from each neighbour.
	receivedRoutes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNS, Name: "received_routes",
		Help: "Routes received from the neighbour (all rejected by the speaker's import policy).",
	}, []string{"peer", "neighbor"})
	// announcedRoutes is the number of service routes this node originates.
	announcedRoutes = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: metricsNS, Name: "announced_routes",
		Help: "Service routes (/32, /128) this node originates.",
	})
	// running is 1 while gobgp runs a global configuration.
	running = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: metricsNS, Name: "running",
		Help: "1 when BGP runs on this node (a usable BgpConf default exists).",
	})
	// restarts counts gobgp restarts caused by global configuration changes.
	restarts = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metricsNS, Name: "restarts_total",
		Help: "Restarts of the embedded gobgp for changes it cannot apply live (AS, router ID, listen port).",
	})
	// statusWrites counts status patches by kind.
	statusWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNS, Name: "status_writes_total",
		Help: "Status patches of BgpConf and BgpPeer objects written by this speaker.",
	}, []string{"kind"})
	// configErrors counts failed configuration passes.
	configErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metricsNS, Name: "config_errors_total",
		Help: "Configuration passes that failed and were retried.",
	})
)

var stateNumber = map[string]float64{"IDLE": 1, "CONNECT": 2, "ACTIVE": 3, "OPENSENT": 4, "OPENCONFIRM": 5, "ESTABLISHED": 6}

func init() {
	ctrlmetrics.Registry.MustRegister(sessionUp, sessionState, advertisedRoutes, receivedRoutes, announcedRoutes,
		running, restarts, statusWrites, configErrors)
}
