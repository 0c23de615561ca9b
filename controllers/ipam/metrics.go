package ipam

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of the controller role, registered with controller-runtime's
// registry (served on --metrics-bind-address).
var (
	eipAddresses = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "openelb", Subsystem: "eip", Name: "addresses_total",
		Help: "Addresses of the Eip (network and broadcast included; approximate above 2^53).",
	}, []string{"eip"})
	eipInUse = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "openelb", Subsystem: "eip", Name: "addresses_in_use",
		Help: "Distinct addresses of the Eip held by Services.",
	}, []string{"eip"})
	assignErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "openelb", Subsystem: "ipam", Name: "assignment_errors_total",
		Help: "Services left without (some of) their addresses, by reason (PoolExhausted, NoEip, AddressConflict, ...).",
	}, []string{"reason"})
	assignLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "openelb", Subsystem: "ipam", Name: "assignment_duration_seconds",
		Help:    "Time from the controller seeing a Service without address to the write that gives it one.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	})
	apiWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "openelb", Subsystem: "ipam", Name: "api_writes_total",
		Help: "Successful API writes of the IPAM controllers by resource (services/status, eips, eips/status); Events not counted.",
	}, []string{"resource"})
)

func init() {
	metrics.Registry.MustRegister(eipAddresses, eipInUse, assignErrors, assignLatency, apiWrites)
}
