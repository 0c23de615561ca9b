package vip

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The vip backend's metrics (besides openelb_speaker_announcing with
// protocol "vip" for the addresses this node holds as VRRP master).
var (
	keepalivedUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "openelb_speaker", Subsystem: "vip", Name: "keepalived_up",
		Help: "1 while keepalived runs under its supervisor on this node.",
	})
	keepalivedExits = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "openelb_speaker", Subsystem: "vip", Name: "keepalived_exits_total",
		Help: "keepalived processes that ended unexpectedly (restarted with back-off).",
	})
	keepalivedReloads = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "openelb_speaker", Subsystem: "vip", Name: "keepalived_reloads_total",
		Help: "Configuration changes applied to keepalived with SIGHUP.",
	})
	configErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "openelb_speaker", Subsystem: "vip", Name: "config_errors_total",
		Help: "Rendered configurations that keepalived -t rejected (not installed).",
	})
	instances = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "openelb_speaker", Subsystem: "vip", Name: "instances",
		Help: "VRRP instances configured on this node.",
	})
	master = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "openelb_speaker", Subsystem: "vip", Name: "master",
		Help: "1 for each VRRP instance this node is master of (it holds the instance's addresses).",
	}, []string{"interface", "family", "vrid"})
	planWrites = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "openelb_speaker", Subsystem: "vip", Name: "plan_writes_total",
		Help: "Plans this node recorded as the writer.",
	})
	unplanned = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "openelb_speaker", Subsystem: "vip", Name: "unplanned_addresses",
		Help: "vip addresses the writer could not place (no VRID left); set on the writer only.",
	})
	foreignAdverts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "openelb_speaker", Subsystem: "vip", Name: "foreign_adverts_total",
		Help: "VRRP advertisements received from routers that are not openelb speakers.",
	}, []string{"interface", "family", "vrid"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(keepalivedUp, keepalivedExits, keepalivedReloads, configErrors, instances, master,
		planWrites, unplanned, foreignAdverts)
}
