// Package conversion registers the CRD conversion webhook (/convert) that
// converts Eip, BgpConf and BgpPeer between v1alpha1 and v1alpha2. The
// operator role serves it (docs/design/0003).
package conversion

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

// Path is where the conversion webhook is served.
const Path = "/convert"

// Setup registers the conversion webhook for every convertible kind with the
// manager's webhook server. Registering a kind again later (for example with
// a validator) is safe: the builder registers /convert only once.
func Setup(mgr ctrl.Manager) error {
	for _, hub := range []client.Object{&networkv1alpha2.Eip{}, &networkv1alpha2.BgpConf{}, &networkv1alpha2.BgpPeer{}} {
		if err := ctrl.NewWebhookManagedBy(mgr).For(hub).Complete(); err != nil {
			return fmt.Errorf("register conversion webhook for %T: %w", hub, err)
		}
	}
	return nil
}
