package events

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

const (
	resultWritten = "written"
	resultFailed  = "failed"
	resultDropped = "dropped"
)

var eventsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "openelb", Name: "events_total",
	Help: "Kubernetes Event writes (creates and aggregation patches) by result: written, failed (refused by the apiserver or still failing after retries), dropped (queue full or shutting down).",
}, []string{"result"})

func init() {
	metrics.Registry.MustRegister(eventsTotal)
}
