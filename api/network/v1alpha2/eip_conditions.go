package v1alpha2

// Eip status condition types and reasons, written by the controller (added
// by this project).
const (
	// EipConditionReady is True when the address parses, does not overlap
	// an older Eip and the Eip is enabled and not being deleted.
	EipConditionReady = "Ready"
	// EipConditionExhausted is True when no address of the pool is free.
	EipConditionExhausted = "Exhausted"
	// EipConditionOutsideRange is True when addresses in use lie outside
	// spec.address (the range was shrunk underneath them without the
	// webhook); they stay allocated until their Services release them.
	EipConditionOutsideRange = "AddressesOutsideRange"
	// EipConditionDeletionBlocked is True while a deleted Eip still has
	// addresses in use; the message names the Services.
	EipConditionDeletionBlocked = "DeletionBlocked"
	// EipConditionUsedTruncated is True when status.used lists only part of
	// the addresses in use (it is bounded to stay far below the object size
	// limit); usage always counts them all.
	EipConditionUsedTruncated = "UsedTruncated"

	// EipReasonValid, EipReasonInvalidAddress, EipReasonOverlap,
	// EipReasonDisabled and EipReasonDeleting explain Ready.
	EipReasonValid          = "Valid"
	EipReasonInvalidAddress = "InvalidAddress"
	EipReasonOverlap        = "Overlap"
	EipReasonDisabled       = "Disabled"
	EipReasonDeleting       = "Deleting"
	// EipReasonFull, EipReasonAvailable explain Exhausted.
	EipReasonFull      = "Full"
	EipReasonAvailable = "AddressesAvailable"
	// EipReasonInUse explains DeletionBlocked and AddressesOutsideRange.
	EipReasonInUse = "InUse"
	// EipReasonNone is the reason of a False condition without a problem.
	EipReasonNone = "None"
	// EipReasonBounded explains UsedTruncated.
	EipReasonBounded = "Bounded"
)
