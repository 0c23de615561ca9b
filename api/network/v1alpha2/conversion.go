package v1alpha2

// Hub marks v1alpha2 as the conversion hub of Eip.
func (*Eip) Hub() {}

// Hub marks v1alpha2 as the conversion hub of BgpConf.
func (*BgpConf) Hub() {}

// Hub marks v1alpha2 as the conversion hub of BgpPeer.
func (*BgpPeer) Hub() {}
