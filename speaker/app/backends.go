package app

import (
	"fmt"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/app"
	"github.com/openelb/openelb-operator/speaker"
	"github.com/openelb/openelb-operator/speaker/internal/metrics"
	"github.com/openelb/openelb-operator/speaker/internal/netx"
	"github.com/openelb/openelb-operator/speaker/layer2"
	"github.com/openelb/openelb-operator/speaker/liveness"
)

// Deps is what a back-end factory receives.
type Deps struct {
	Options
	Manager manager.Manager
	Log     logr.Logger
	Netx    netx.Netx
	// Key is the liveness key (nil when no enabled mode needs liveness).
	Key []byte
	// Liveness is the speakers' membership (nil when not needed); built
	// before the back-ends.
	Liveness *liveness.Liveness
}

// factory builds the back-end of one protocol; build is nil while the
// protocol's back-end is not part of this build.
type factory struct {
	protocol string
	enabled  bool
	flag     string
	issue    string
	build    func(Deps) (speaker.Backend, error)
}

func (f factory) notBuilt() error {
	return fmt.Errorf("%s mode is enabled (%s) but %w in this build of openelb (tracked in %s): start the speaker with %s=false",
		f.protocol, f.flag, app.ErrNotBuilt, f.issue, f.flag)
}

// factories lists the protocols. The BGP (issue 7) and VIP (issue 8)
// back-ends plug in here: set build to their constructor.
func factories(o Options) []factory {
	return []factory{
		{protocol: networkv1alpha2.ProtocolLayer2, enabled: o.EnableLayer2, flag: "--enable-layer2", issue: "issue 6", build: newLayer2},
		{protocol: networkv1alpha2.ProtocolBGP, enabled: o.EnableBGP, flag: "--enable-bgp", issue: "issue 7 (BGP mode)", build: newBGP},
		{protocol: networkv1alpha2.ProtocolVIP, enabled: o.EnableVIP, flag: "--enable-keepalived-vip", issue: "issue 8 (VIP mode)", build: newVIP},
	}
}

func newLayer2(d Deps) (speaker.Backend, error) {
	cfg := layer2.Config{Announcer: layer2.AnnouncerConfig{Dialer: layer2.Kernel{}, Refresh: d.GratuitousRefresh}}
	if d.Liveness != nil {
		cfg.Synced = d.Liveness.Synced
	}
	return layer2.New(cfg, d.Log.WithName("layer2")), nil
}

// assemble builds liveness, the enabled back-ends, the recorder and the
// core.
func assemble(d Deps) (*speaker.Speaker, error) {
	if d.NeedsLiveness() {
		l, err := liveness.New(liveness.Config{
			Self: d.NodeName, Key: d.Key, Listen: fmt.Sprintf(":%d", d.LivenessPort), Observer: metrics.LivenessObserver{},
		}, d.Log.WithName("liveness"))
		if err != nil {
			return nil, err
		}
		d.Liveness = l
	}
	cfg := speaker.Config{
		Node: d.NodeName, Netx: d.Netx, LivenessPort: d.LivenessPort,
		Facts: speaker.FactsOptions{Allowed: map[string][]string{
			networkv1alpha2.ProtocolLayer2: d.Layer2Interfaces,
			networkv1alpha2.ProtocolVIP:    d.VIPInterfaces,
		}},
	}
	if d.Liveness != nil {
		cfg.Liveness = d.Liveness
	}
	reporters := map[string]speaker.Reporter{}
	for _, f := range factories(d.Options) {
		if !f.enabled {
			continue
		}
		if f.build == nil {
			return nil, f.notBuilt()
		}
		b, err := f.build(d)
		if err != nil {
			return nil, fmt.Errorf("%s back-end: %w", f.protocol, err)
		}
		cfg.Backends = append(cfg.Backends, b)
		if r, ok := b.(speaker.Reporter); ok {
			reporters[f.protocol] = r
		}
	}
	mgr := d.Manager
	cfg.Recorder = speaker.NewRecorder(d.NodeName, mgr.GetCache(), mgr.GetClient(),
		mgr.GetEventRecorderFor("openelb-speaker"), reporters, d.Log.WithName("recorder"))
	return speaker.New(cfg, d.Log), nil
}
