// Package v1alpha1 holds the ramd.io/v1alpha1 API: the PostgreSQLCluster resource the
// operator reconciles into a StatefulSet of ramd members.
//
// +kubebuilder:object:generate=true
// +groupName=ramd.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of the operator's resources.
	GroupVersion = schema.GroupVersion{Group: "ramd.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
