package app

import (
	"context"

	"github.com/openelb/openelb-operator/speaker"
	"github.com/openelb/openelb-operator/speaker/bgp"
)

// newBGP builds the BGP back-end (speaker/bgp) and registers its watches
// (BgpConf, BgpPeer, Nodes, Secrets and ConfigMaps of --namespace).
func newBGP(d Deps) (speaker.Backend, error) {
	b, err := bgp.NewBackend(bgp.BackendConfig{
		Node: d.NodeName, Namespace: d.Namespace, DefaultListenPort: d.BGPListenPort, GRPCAddress: d.BGPGRPCAddress,
	}, d.Log.WithName("bgp"))
	if err != nil {
		return nil, err
	}
	if err := b.SetupWithManager(context.Background(), d.Manager); err != nil {
		return nil, err
	}
	return b, nil
}
