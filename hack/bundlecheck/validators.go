package bundlecheck

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/operator-framework/api/pkg/validation"
	valerrors "github.com/operator-framework/api/pkg/validation/errors"
	interfaces "github.com/operator-framework/api/pkg/validation/interfaces"
	registrybundle "github.com/operator-framework/operator-registry/pkg/lib/bundle"
	"github.com/sirupsen/logrus"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Finding is one error or warning of a validator.
type Finding struct {
	Validator string
	Warning   bool
	Message   string
}

func (f Finding) String() string {
	level := "error"
	if f.Warning {
		level = "warning"
	}
	return fmt.Sprintf("%s %s: %s", f.Validator, level, f.Message)
}

// AllowedWarning is a warning the check accepts, with the reason.
type AllowedWarning struct {
	Validator string
	// Contains is a substring of the warning.
	Contains string
	Reason   string
}

// AllowedWarnings are the only warnings the bundle may have.
var AllowedWarnings = []AllowedWarning{
	{
		Validator: "OperatorHubV2Validator",
		Contains:  "Migrate the API(s) for endpointslices: ",
		Reason: "the speakers read discovery.k8s.io/v1 EndpointSlices, so the operator must hold that " +
			"permission to grant it; RBAC rules carry no API version, and the validator flags every " +
			"rule on endpointslices because discovery.k8s.io/v1beta1 was removed in Kubernetes 1.25",
	},
	{
		Validator: "AlphaDeprecatedAPIsValidator",
		Contains:  "Migrate the API(s) for endpointslices: ",
		Reason:    "the same warning from the deprecated-API validator (OperatorHubV2 runs the same check)",
	},
}

// Allowed returns the allowed warning f is, if any.
func Allowed(f Finding) (AllowedWarning, bool) {
	if !f.Warning {
		return AllowedWarning{}, false
	}
	for _, a := range AllowedWarnings {
		if a.Validator == f.Validator && strings.Contains(f.Message, a.Contains) {
			return a, true
		}
	}
	return AllowedWarning{}, false
}

// K8sVersion is the Kubernetes version the deprecated-API checks assume:
// the CSV's minKubeVersion.
const K8sVersion = "1.31"

// RunValidators runs what `operator-sdk bundle validate ./bundle
// --select-optional suite=operatorframework` runs: operator-registry's
// format and content validation, the default bundle validators, and the
// OperatorHub, capabilities, categories, deprecated-API and good-practices
// validators.
func RunValidators(b *Bundle) []Finding {
	var out []Finding
	log := logrus.New()
	log.SetOutput(io.Discard)
	// The registry is only used to pull images, never for a directory.
	v := registrybundle.NewImageValidator(nil, logrus.NewEntry(log))
	out = append(out, registryFindings("ValidateBundleFormat", v.ValidateBundleFormat(b.Dir))...)
	out = append(out, registryFindings("ValidateBundleContent", v.ValidateBundleContent(filepath.Join(b.Dir, "manifests")))...)

	for _, o := range b.Manifests.Objects {
		kind := o.GetKind()
		if kind == "ClusterServiceVersion" || kind == "CustomResourceDefinition" {
			continue
		}
		if ok, _ := registrybundle.IsSupported(kind); !ok {
			out = append(out, Finding{Validator: "SupportedKinds", Message: fmt.Sprintf("%s %s is not supported in a registry+v1 bundle", kind, o.GetName())})
		}
		for _, err := range apivalidation.ValidateObjectMetaAccessor(o, false, func(string, bool) []string { return nil }, field.NewPath("metadata")) {
			out = append(out, Finding{Validator: "ObjectMeta", Message: fmt.Sprintf("%s %s: %v", kind, o.GetName(), err)})
		}
	}

	objs := b.Manifests.ObjectsToValidate()
	out = append(out, results("DefaultBundleValidators", validation.DefaultBundleValidators.Validate(objs...))...)
	optional := append(objs, map[string]string{"k8s-version": K8sVersion})
	for _, nv := range []struct {
		name string
		v    interfaces.Validator
	}{
		{"OperatorHubV2Validator", validation.OperatorHubV2Validator},
		{"StandardCapabilitiesValidator", validation.StandardCapabilitiesValidator},
		{"StandardCategoriesValidator", validation.StandardCategoriesValidator},
		{"AlphaDeprecatedAPIsValidator", validation.AlphaDeprecatedAPIsValidator},
		{"GoodPracticesValidator", validation.GoodPracticesValidator},
	} {
		out = append(out, results(nv.name, nv.v.Validate(optional...))...)
	}
	return out
}

func results(name string, rs []valerrors.ManifestResult) []Finding {
	var out []Finding
	for _, r := range rs {
		for _, e := range r.Errors {
			out = append(out, Finding{Validator: name, Message: e.Error()})
		}
		for _, w := range r.Warnings {
			out = append(out, Finding{Validator: name, Warning: true, Message: w.Error()})
		}
	}
	return out
}

// registryFindings unpacks operator-registry's ValidationError.
func registryFindings(name string, err error) []Finding {
	if err == nil {
		return nil
	}
	var ve registrybundle.ValidationError
	if errors.As(err, &ve) {
		var out []Finding
		for _, e := range ve.Errors {
			out = append(out, Finding{Validator: name, Message: e.Error()})
		}
		return out
	}
	return []Finding{{Validator: name, Message: err.Error()}}
}
