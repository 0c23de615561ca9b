// Package ipam holds the controller role's reconcilers: the Service
// reconciler assigns addresses of Eip pools to LoadBalancer Services (one
// write per Service: status, annotation, label and finalizer together), and
// the Eip reconciler keeps each Eip's finalizer and derived status. Both
// share a Core: the pure allocator of internal/ipam, rebuilt from the
// Services' status before anything new is assigned.
package ipam
