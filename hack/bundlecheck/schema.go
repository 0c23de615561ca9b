package bundlecheck

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
)

// versionSchema is one served version of a CRD, ready to validate.
type versionSchema struct {
	internal   *apiextensions.JSONSchemaProps
	structural *structuralschema.Structural
}

// schemaFor returns the schema of CRD name at version.
func (b *Bundle) schemaFor(name, version string) (*versionSchema, error) {
	crd, ok := b.CRDs[name]
	if !ok {
		return nil, fmt.Errorf("CRD %s is not in the bundle", name)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name != version || !v.Served {
			continue
		}
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			return nil, fmt.Errorf("CRD %s %s has no schema", name, version)
		}
		internal := &apiextensions.JSONSchemaProps{}
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, internal, nil); err != nil {
			return nil, fmt.Errorf("CRD %s %s: %w", name, version, err)
		}
		s, err := structuralschema.NewStructural(internal)
		if err != nil {
			return nil, fmt.Errorf("CRD %s %s: %w", name, version, err)
		}
		return &versionSchema{internal: internal, structural: s}, nil
	}
	return nil, fmt.Errorf("CRD %s serves no version %s", name, version)
}

// crdName returns the CRD of an object's group and kind.
func (b *Bundle) crdName(apiVersion, kind string) (string, string, bool) {
	group, version, ok := strings.Cut(apiVersion, "/")
	if !ok {
		return "", "", false
	}
	for name, crd := range b.CRDs {
		if crd.Spec.Group == group && crd.Spec.Names.Kind == kind {
			return name, version, true
		}
	}
	return "", "", false
}

// ValidateObject validates obj as the API server would on create: unknown
// fields (which the API server would silently drop), the OpenAPI schema
// after defaulting, and the CEL rules (x-kubernetes-validations).
func (b *Bundle) ValidateObject(obj *unstructured.Unstructured) []error {
	name, version, ok := b.crdName(obj.GetAPIVersion(), obj.GetKind())
	if !ok {
		return []error{fmt.Errorf("%s %s: no CRD in the bundle", obj.GetKind(), obj.GetAPIVersion())}
	}
	s, err := b.schemaFor(name, version)
	if err != nil {
		return []error{err}
	}
	what := fmt.Sprintf("%s %s %s", obj.GetAPIVersion(), obj.GetKind(), obj.GetName())
	var errs []error
	u := obj.DeepCopy().Object
	unknown := pruning.PruneWithOptions(u, s.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, p := range unknown {
		if strings.HasPrefix(p, "metadata.") {
			continue // the API server keeps ObjectMeta; the schema lists none of it
		}
		errs = append(errs, fmt.Errorf("%s: unknown field %s (the API server would drop it)", what, p))
	}
	structuraldefaulting.Default(u, s.structural)
	validator, _, err := apiservervalidation.NewSchemaValidator(s.internal)
	if err != nil {
		return append(errs, fmt.Errorf("%s: schema validator: %w", what, err))
	}
	for _, e := range apiservervalidation.ValidateCustomResource(nil, u, validator) {
		errs = append(errs, fmt.Errorf("%s: %v", what, e))
	}
	celValidator := cel.NewValidator(s.structural, true, celconfig.PerCallLimit)
	if celValidator != nil {
		celErrs, _ := celValidator.Validate(context.Background(), field.NewPath(""), s.structural, u, nil, celconfig.RuntimeCELCostBudget)
		for _, e := range celErrs {
			errs = append(errs, fmt.Errorf("%s: %v", what, e))
		}
	}
	return errs
}

var indexed = regexp.MustCompile(`^([^\[\]]+)\[(\d+)\]$`)

// ResolvePath finds a descriptor path (dot-separated, arrays as
// field[0]) below .spec or .status (root) of the CRD name at version. It
// returns the schema it names.
func (b *Bundle) ResolvePath(name, version, root, path string) (*structuralschema.Structural, error) {
	s, err := b.schemaFor(name, version)
	if err != nil {
		return nil, err
	}
	cur, ok := s.structural.Properties[root]
	if !ok {
		return nil, fmt.Errorf("%s %s has no .%s", name, version, root)
	}
	node := &cur
	for _, seg := range strings.Split(path, ".") {
		field, index := seg, -1
		if m := indexed.FindStringSubmatch(seg); m != nil {
			field = m[1]
			index, _ = strconv.Atoi(m[2])
		}
		next, ok := node.Properties[field]
		if !ok {
			return nil, fmt.Errorf("%s %s: .%s.%s: no field %q", name, version, root, path, field)
		}
		node = &next
		if index >= 0 {
			if node.Items == nil {
				return nil, fmt.Errorf("%s %s: .%s.%s: %q is not an array", name, version, root, path, field)
			}
			node = node.Items
		}
	}
	return node, nil
}

// TopLevelFields lists the fields directly below .spec or .status.
func (b *Bundle) TopLevelFields(name, version, root string) ([]string, error) {
	s, err := b.schemaFor(name, version)
	if err != nil {
		return nil, err
	}
	var out []string
	for f := range s.structural.Properties[root].Properties {
		out = append(out, f)
	}
	return out, nil
}
