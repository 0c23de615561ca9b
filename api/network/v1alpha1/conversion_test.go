package v1alpha1

import (
	"encoding/json"
	"math/rand"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/randfill"

	"github.com/openelb/openelb-operator/api/network/v1alpha2"
)

// normalize round-trips v through JSON so that values JSON cannot carry
// (sub-second times, nil versus empty) compare equal.
func normalize(t *testing.T, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	rv := reflect.ValueOf(v).Elem()
	rv.Set(reflect.Zero(rv.Type()))
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func filler(seed int64) *randfill.Filler {
	return randfill.New().RandSource(rand.NewSource(seed)).NilChance(0.3).NumElements(0, 3).Funcs(
		func(m *metav1.ObjectMeta, c randfill.Continue) {
			m.Name = c.String(10)
			m.Annotations = map[string]string{"a": c.String(5)}
			m.Labels = map[string]string{"l": c.String(5)}
		},
		func(tm *metav1.Time, c randfill.Continue) {
			*tm = metav1.NewTime(time.Unix(c.Int63n(1<<32), 0).UTC())
		},
		func(_ *metav1.TypeMeta, _ randfill.Continue) {},
	)
}

// Hub -> v1alpha1 -> hub must give back the hub object exactly, whatever it
// holds: v1alpha1 clients that read and write an object lose nothing.
func TestHubRoundTrip(t *testing.T) {
	for seed := int64(0); seed < 300; seed++ {
		f := filler(seed)

		var eip v1alpha2.Eip
		f.Fill(&eip)
		normalize(t, &eip)
		var spokeEip Eip
		if err := spokeEip.ConvertFrom(&eip); err != nil {
			t.Fatal(err)
		}
		var eipBack v1alpha2.Eip
		if err := spokeEip.ConvertTo(&eipBack); err != nil {
			t.Fatal(err)
		}
		normalize(t, &eipBack)
		if !reflect.DeepEqual(eip, eipBack) {
			t.Fatalf("seed %d: Eip round trip changed the object:\nbefore %+v\nafter  %+v", seed, eip, eipBack)
		}

		var conf v1alpha2.BgpConf
		f.Fill(&conf)
		normalize(t, &conf)
		var spokeConf BgpConf
		if err := spokeConf.ConvertFrom(&conf); err != nil {
			t.Fatal(err)
		}
		var confBack v1alpha2.BgpConf
		if err := spokeConf.ConvertTo(&confBack); err != nil {
			t.Fatal(err)
		}
		normalize(t, &confBack)
		if !reflect.DeepEqual(conf, confBack) {
			t.Fatalf("seed %d: BgpConf round trip changed the object:\nbefore %+v\nafter  %+v", seed, conf, confBack)
		}

		var peer v1alpha2.BgpPeer
		f.Fill(&peer)
		if peer.Spec.Transport != nil {
			peer.Spec.Transport.RemotePort %= 65536 // the schema bounds it
		}
		normalize(t, &peer)
		var spokePeer BgpPeer
		if err := spokePeer.ConvertFrom(&peer); err != nil {
			t.Fatal(err)
		}
		var peerBack v1alpha2.BgpPeer
		if err := spokePeer.ConvertTo(&peerBack); err != nil {
			t.Fatal(err)
		}
		normalize(t, &peerBack)
		if !reflect.DeepEqual(peer, peerBack) {
			a, _ := json.Marshal(peer)
			b, _ := json.Marshal(peerBack)
			t.Fatalf("seed %d: BgpPeer round trip changed the object:\nbefore %s\nafter  %s", seed, a, b)
		}
	}
}

// A v1alpha1 object with no conversion data maps its fields to their
// v1alpha2 names.
func TestSpokeToHubFieldMapping(t *testing.T) {
	conf := &BgpConf{Spec: BgpConfSpec{As: 65000, RouterId: "198.51.100.1", Port: 17900}}
	var hubConf v1alpha2.BgpConf
	if err := conf.ConvertTo(&hubConf); err != nil {
		t.Fatal(err)
	}
	if want := (v1alpha2.BgpConfSpec{As: 65000, RouterId: "198.51.100.1", ListenPort: 17900}); !reflect.DeepEqual(hubConf.Spec, want) {
		t.Errorf("BgpConf: got %+v, want %+v", hubConf.Spec, want)
	}

	tests := []struct {
		name string
		in   BgpPeerSpec
		want v1alpha2.BgpPeerSpec
	}{
		{
			name: "neighbour only",
			in:   BgpPeerSpec{Config: NeighborConfig{PeerAs: 65001, NeighborAddress: "198.51.100.1"}},
			want: v1alpha2.BgpPeerSpec{Conf: &v1alpha2.PeerConf{PeerAs: 65001, NeighborAddress: "198.51.100.1"}},
		},
		{
			name: "add-path on IPv4 creates the default family",
			in:   BgpPeerSpec{Config: NeighborConfig{PeerAs: 65001, NeighborAddress: "198.51.100.1"}, AddPaths: AddPaths{SendMax: 4}},
			want: v1alpha2.BgpPeerSpec{
				Conf: &v1alpha2.PeerConf{PeerAs: 65001, NeighborAddress: "198.51.100.1"},
				AfiSafis: []*v1alpha2.AfiSafi{{
					Config:   &v1alpha2.AfiSafiConfig{Family: &v1alpha2.Family{Afi: "AFI_IP", Safi: "SAFI_UNICAST"}, Enabled: true},
					AddPaths: &v1alpha2.AddPaths{Config: &v1alpha2.AddPathsConfig{SendMax: 4}},
				}},
			},
		},
		{
			name: "passive transport",
			in:   BgpPeerSpec{Config: NeighborConfig{PeerAs: 1, NeighborAddress: "198.51.100.1"}, Transport: Transport{PassiveMode: true, RemotePort: 1790}},
			want: v1alpha2.BgpPeerSpec{Conf: &v1alpha2.PeerConf{PeerAs: 1, NeighborAddress: "198.51.100.1"}, Transport: &v1alpha2.Transport{PassiveMode: true, RemotePort: 1790}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hub v1alpha2.BgpPeer
			if err := (&BgpPeer{Spec: tt.in}).ConvertTo(&hub); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(hub.Spec, tt.want) {
				a, _ := json.Marshal(hub.Spec)
				b, _ := json.Marshal(tt.want)
				t.Errorf("got %s\nwant %s", a, b)
			}
		})
	}
}

func TestUsingPortForwardKept(t *testing.T) {
	in := &BgpPeer{Spec: BgpPeerSpec{Config: NeighborConfig{PeerAs: 1, NeighborAddress: "198.51.100.1"}, UsingPortForward: true}}
	var hub v1alpha2.BgpPeer
	if err := in.ConvertTo(&hub); err != nil {
		t.Fatal(err)
	}
	if hub.Annotations[UsingPortForwardAnnotation] != "true" {
		t.Fatalf("usingPortForward not kept: %v", hub.Annotations)
	}
	var out BgpPeer
	if err := out.ConvertFrom(&hub); err != nil {
		t.Fatal(err)
	}
	if !out.Spec.UsingPortForward {
		t.Error("usingPortForward lost on the way back")
	}
	if _, ok := out.Annotations[UsingPortForwardAnnotation]; ok {
		t.Error("internal annotation shown to v1alpha1 clients")
	}
}
