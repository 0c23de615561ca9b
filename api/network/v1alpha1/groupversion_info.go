// Package v1alpha1 contains the older OpenELB API of group
// network.kubesphere.io, version v1alpha1. It is served, not stored: every
// object converts to and from v1alpha2 (the hub) through the conversion
// webhook of the controller role, losslessly (see conversion.go).
//
// +kubebuilder:object:generate=true
// +groupName=network.kubesphere.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is group version used to register these objects.
	GroupVersion = schema.GroupVersion{Group: "network.kubesphere.io", Version: "v1alpha1"}

	// SchemeBuilder is used to add go types to the GroupVersionKind scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types in this group-version to the given scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
