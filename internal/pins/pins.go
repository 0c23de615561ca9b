//go:build tools

// Package pins keeps the pinned versions of libraries that later roles build
// on in go.mod (gobgp v3.37.0, mdlayher/arp, mdlayher/ndp, netlink,
// operator-lib) before every one of them is imported by a role.
package pins

import (
	_ "github.com/mdlayher/arp"
	_ "github.com/mdlayher/ndp"
	_ "github.com/operator-framework/operator-lib/conditions"
	_ "github.com/osrg/gobgp/v3/pkg/server"
	_ "github.com/vishvananda/netlink"
)
