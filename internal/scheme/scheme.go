// Package scheme builds the runtime.Scheme shared by every role: client-go's
// built-in kinds, apiextensions, and this project's API groups.
package scheme

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	networkv1alpha1 "github.com/openelb/openelb-operator/api/network/v1alpha1"
	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
)

// New returns a scheme with every kind the roles read or write.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(networkv1alpha1.AddToScheme(s))
	utilruntime.Must(networkv1alpha2.AddToScheme(s))
	utilruntime.Must(operatorv1alpha1.AddToScheme(s))
	return s
}
