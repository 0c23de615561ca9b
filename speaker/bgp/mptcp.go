package bgp

import (
	"os"
	"strings"
	"sync"
)

var mptcpOnce sync.Once

// disableMPTCPListeners makes net.Listen create plain TCP sockets again.
// Since Go 1.24 listeners default to Multipath TCP where the kernel has
// it, and an MPTCP socket refuses TCP_MD5SIG ("protocol not available")
// and IP_TTL: gobgp's listener could then not accept sessions with a
// password or TTL security. GODEBUG changes made with os.Setenv take
// effect at once; an explicit multipathtcp setting from the user wins.
func disableMPTCPListeners() {
	mptcpOnce.Do(func() {
		cur := os.Getenv("GODEBUG")
		if strings.Contains(cur, "multipathtcp=") {
			return
		}
		if cur != "" {
			cur += ","
		}
		_ = os.Setenv("GODEBUG", cur+"multipathtcp=0")
	})
}
