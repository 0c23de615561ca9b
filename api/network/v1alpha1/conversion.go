package v1alpha1

import (
	"encoding/json"
	"fmt"
	"net/netip"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/conversion"

	"github.com/openelb/openelb-operator/api/network/v1alpha2"
)

// ConversionDataAnnotation keeps the v1alpha2 fields that v1alpha1 cannot
// express while an object is read through v1alpha1, so that writing it back
// through v1alpha1 loses nothing. It never appears on stored objects.
const ConversionDataAnnotation = "openelb.kubesphere.io/v1alpha2-conversion-data"

var (
	_ conversion.Convertible = &Eip{}
	_ conversion.Convertible = &BgpConf{}
	_ conversion.Convertible = &BgpPeer{}
)

// stash records hub spec and status on the spoke's annotations.
func stash(meta *metav1.ObjectMeta, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("stash conversion data: %w", err)
	}
	if meta.Annotations == nil {
		meta.Annotations = map[string]string{}
	}
	meta.Annotations[ConversionDataAnnotation] = string(data)
	return nil
}

// unstash restores the hub fields recorded by stash, if any, and removes the
// annotation from meta.
func unstash(meta *metav1.ObjectMeta, v any) error {
	data, ok := meta.Annotations[ConversionDataAnnotation]
	if !ok {
		return nil
	}
	delete(meta.Annotations, ConversionDataAnnotation)
	if len(meta.Annotations) == 0 {
		meta.Annotations = nil
	}
	if err := json.Unmarshal([]byte(data), v); err != nil {
		return fmt.Errorf("read annotation %s: %w", ConversionDataAnnotation, err)
	}
	return nil
}

type eipData struct {
	Spec   v1alpha2.EipSpec   `json:"spec"`
	Status v1alpha2.EipStatus `json:"status"`
}

// ConvertTo converts this v1alpha1 Eip to the hub version.
func (src *Eip) ConvertTo(hub conversion.Hub) error {
	dst := hub.(*v1alpha2.Eip)
	dst.ObjectMeta = *src.ObjectMeta.DeepCopy()
	var saved eipData
	if err := unstash(&dst.ObjectMeta, &saved); err != nil {
		return err
	}
	dst.Spec = saved.Spec
	dst.Status = saved.Status
	dst.Spec.Address = src.Spec.Address
	dst.Spec.Protocol = src.Spec.Protocol
	dst.Spec.Interface = src.Spec.Interface
	dst.Spec.Disable = src.Spec.Disable
	dst.Spec.UsingKnownIPs = src.Spec.UsingKnownIPs
	dst.Status.Occupied = src.Status.Occupied
	dst.Status.Usage = src.Status.Usage
	dst.Status.PoolSize = src.Status.PoolSize
	return nil
}

// ConvertFrom converts the hub version to this v1alpha1 Eip.
func (dst *Eip) ConvertFrom(hub conversion.Hub) error {
	src := hub.(*v1alpha2.Eip)
	dst.ObjectMeta = *src.ObjectMeta.DeepCopy()
	dst.Spec = EipSpec{
		Address:       src.Spec.Address,
		Protocol:      src.Spec.Protocol,
		Interface:     src.Spec.Interface,
		Disable:       src.Spec.Disable,
		UsingKnownIPs: src.Spec.UsingKnownIPs,
	}
	dst.Status = EipStatus{
		Occupied: src.Status.Occupied,
		Usage:    src.Status.Usage,
		PoolSize: src.Status.PoolSize,
	}
	return stash(&dst.ObjectMeta, eipData{Spec: src.Spec, Status: src.Status})
}

type bgpConfData struct {
	Spec   v1alpha2.BgpConfSpec   `json:"spec"`
	Status v1alpha2.BgpConfStatus `json:"status"`
}

// ConvertTo converts this v1alpha1 BgpConf to the hub version: routerID
// becomes routerId and port becomes listenPort.
func (src *BgpConf) ConvertTo(hub conversion.Hub) error {
	dst := hub.(*v1alpha2.BgpConf)
	dst.ObjectMeta = *src.ObjectMeta.DeepCopy()
	var saved bgpConfData
	if err := unstash(&dst.ObjectMeta, &saved); err != nil {
		return err
	}
	dst.Spec = saved.Spec
	dst.Status = saved.Status
	dst.Spec.As = src.Spec.As
	dst.Spec.RouterId = src.Spec.RouterId
	dst.Spec.ListenPort = src.Spec.Port
	return nil
}

// ConvertFrom converts the hub version to this v1alpha1 BgpConf.
func (dst *BgpConf) ConvertFrom(hub conversion.Hub) error {
	src := hub.(*v1alpha2.BgpConf)
	dst.ObjectMeta = *src.ObjectMeta.DeepCopy()
	dst.Spec = BgpConfSpec{As: src.Spec.As, RouterId: src.Spec.RouterId, Port: src.Spec.ListenPort}
	dst.Status = BgpConfStatus{}
	return stash(&dst.ObjectMeta, bgpConfData{Spec: src.Spec, Status: src.Status})
}

type bgpPeerData struct {
	Spec             v1alpha2.BgpPeerSpec   `json:"spec"`
	Status           v1alpha2.BgpPeerStatus `json:"status"`
	UsingPortForward bool                   `json:"usingPortForward,omitempty"`
}

// UsingPortForwardAnnotation keeps v1alpha1's usingPortForward (which has
// no v1alpha2 field and no effect) on the stored object.
const UsingPortForwardAnnotation = "openelb.kubesphere.io/v1alpha1-using-port-forward"

// defaultFamily is the AFI/SAFI of a neighbour address, as OpenELB derives it
// when afiSafis is empty.
func defaultFamily(neighbor string) *v1alpha2.Family {
	afi := "AFI_IP"
	if a, err := netip.ParseAddr(neighbor); err == nil && a.Is6() && !a.Is4In6() {
		afi = "AFI_IP6"
	}
	return &v1alpha2.Family{Afi: afi, Safi: "SAFI_UNICAST"}
}

// ConvertTo converts this v1alpha1 BgpPeer to the hub version: config
// becomes conf, transport keeps passiveMode and remotePort, and
// addPaths.sendMax becomes the ADD-PATH setting of the first address family
// (created with the neighbour's family when there is none).
func (src *BgpPeer) ConvertTo(hub conversion.Hub) error {
	dst := hub.(*v1alpha2.BgpPeer)
	dst.ObjectMeta = *src.ObjectMeta.DeepCopy()
	var saved bgpPeerData
	if err := unstash(&dst.ObjectMeta, &saved); err != nil {
		return err
	}
	dst.Spec = saved.Spec
	dst.Status = saved.Status

	hadConf, hadTransport := dst.Spec.Conf != nil, dst.Spec.Transport != nil
	if dst.Spec.Conf == nil {
		dst.Spec.Conf = &v1alpha2.PeerConf{}
	}
	dst.Spec.Conf.PeerAs = src.Spec.Config.PeerAs
	dst.Spec.Conf.NeighborAddress = src.Spec.Config.NeighborAddress
	if !hadConf && *dst.Spec.Conf == (v1alpha2.PeerConf{}) {
		dst.Spec.Conf = nil
	}

	if dst.Spec.Transport == nil {
		dst.Spec.Transport = &v1alpha2.Transport{}
	}
	dst.Spec.Transport.PassiveMode = src.Spec.Transport.PassiveMode
	if clampPort(dst.Spec.Transport.RemotePort) != src.Spec.Transport.RemotePort {
		dst.Spec.Transport.RemotePort = uint32(src.Spec.Transport.RemotePort)
	}
	if !hadTransport && *dst.Spec.Transport == (v1alpha2.Transport{}) {
		dst.Spec.Transport = nil
	}

	// v1alpha1 shows at most 255; keep a larger v1alpha2 value unless the
	// v1alpha1 client changed it.
	if clampSendMax(sendMax(&dst.Spec)) != src.Spec.AddPaths.SendMax {
		setSendMax(&dst.Spec, uint32(src.Spec.AddPaths.SendMax))
	}

	if src.Spec.UsingPortForward {
		if dst.Annotations == nil {
			dst.Annotations = map[string]string{}
		}
		dst.Annotations[UsingPortForwardAnnotation] = "true"
	} else if dst.Annotations != nil {
		delete(dst.Annotations, UsingPortForwardAnnotation)
		if len(dst.Annotations) == 0 {
			dst.Annotations = nil
		}
	}
	return nil
}

// sendMax returns the ADD-PATH send-max of the first address family.
func sendMax(spec *v1alpha2.BgpPeerSpec) uint32 {
	if len(spec.AfiSafis) == 0 || spec.AfiSafis[0] == nil || spec.AfiSafis[0].AddPaths == nil || spec.AfiSafis[0].AddPaths.Config == nil {
		return 0
	}
	return spec.AfiSafis[0].AddPaths.Config.SendMax
}

// setSendMax writes n as the ADD-PATH send-max of the first address family,
// touching nothing when the value is unchanged.
func setSendMax(spec *v1alpha2.BgpPeerSpec, n uint32) {
	if sendMax(spec) == n {
		return
	}
	if len(spec.AfiSafis) == 0 || spec.AfiSafis[0] == nil {
		neighbor := ""
		if spec.Conf != nil {
			neighbor = spec.Conf.NeighborAddress
		}
		first := &v1alpha2.AfiSafi{Config: &v1alpha2.AfiSafiConfig{Family: defaultFamily(neighbor), Enabled: true}}
		if len(spec.AfiSafis) == 0 {
			spec.AfiSafis = []*v1alpha2.AfiSafi{first}
		} else {
			spec.AfiSafis[0] = first
		}
	}
	first := spec.AfiSafis[0]
	if first.AddPaths == nil {
		first.AddPaths = &v1alpha2.AddPaths{}
	}
	if first.AddPaths.Config == nil {
		first.AddPaths.Config = &v1alpha2.AddPathsConfig{}
	}
	first.AddPaths.Config.SendMax = n
}

// ConvertFrom converts the hub version to this v1alpha1 BgpPeer.
func (dst *BgpPeer) ConvertFrom(hub conversion.Hub) error {
	src := hub.(*v1alpha2.BgpPeer)
	dst.ObjectMeta = *src.ObjectMeta.DeepCopy()
	dst.Spec = BgpPeerSpec{}
	if src.Spec.Conf != nil {
		dst.Spec.Config = NeighborConfig{PeerAs: src.Spec.Conf.PeerAs, NeighborAddress: src.Spec.Conf.NeighborAddress}
	}
	if src.Spec.Transport != nil {
		dst.Spec.Transport = Transport{PassiveMode: src.Spec.Transport.PassiveMode, RemotePort: clampPort(src.Spec.Transport.RemotePort)}
	}
	dst.Spec.AddPaths.SendMax = clampSendMax(sendMax(&src.Spec))
	if dst.Annotations != nil && dst.Annotations[UsingPortForwardAnnotation] == "true" {
		dst.Spec.UsingPortForward = true
		delete(dst.Annotations, UsingPortForwardAnnotation)
	}
	dst.Status = BgpPeerStatus{}
	return stash(&dst.ObjectMeta, bgpPeerData{Spec: src.Spec, Status: src.Status})
}

func clampPort(p uint32) uint16 {
	if p > 65535 {
		return 65535
	}
	return uint16(p)
}

func clampSendMax(n uint32) uint8 {
	if n > 255 {
		return 255
	}
	return uint8(n)
}
