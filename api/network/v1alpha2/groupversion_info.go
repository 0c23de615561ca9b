// Package v1alpha2 contains the OpenELB-compatible API of group
// network.kubesphere.io, version v1alpha2: Eip, BgpConf and BgpPeer. It is the
// storage version and the conversion hub; field names, JSON names and types
// are those of OpenELB 0.6 so that existing manifests keep working unchanged.
//
// +kubebuilder:object:generate=true
// +groupName=network.kubesphere.io
package v1alpha2

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is group version used to register these objects.
	GroupVersion = schema.GroupVersion{Group: "network.kubesphere.io", Version: "v1alpha2"}

	// SchemeBuilder is used to add go types to the GroupVersionKind scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types in this group-version to the given scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
