package ipam

import (
	"errors"
	"fmt"
)

// Reason classifies why a Service got no (or not every) address. The
// values are the Event reasons the controller uses.
type Reason string

// The reasons.
const (
	// ReasonInvalid: the request cannot be satisfied as written (wrong
	// family, address outside the named Eip, ...). Addresses already held
	// are kept.
	ReasonInvalid Reason = "InvalidRequest"
	// ReasonNoEip: no Eip matches (named Eip missing, no Eip contains the
	// requested address, no namespace-bound or default Eip).
	ReasonNoEip Reason = "NoEip"
	// ReasonUnavailable: the matching Eip is disabled, being deleted or in
	// conflict with another Eip.
	ReasonUnavailable Reason = "EipUnavailable"
	// ReasonExhausted: the matching Eips have no free address.
	ReasonExhausted Reason = "PoolExhausted"
	// ReasonConflict: the requested address is held by a Service it may
	// not be shared with.
	ReasonConflict Reason = "AddressConflict"
	// ReasonIsolation: namespace isolation forbids the Eip.
	ReasonIsolation Reason = "NamespaceIsolation"
)

// Error is an allocation failure with its reason.
type Error struct {
	Reason Reason
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Is matches a bare reason sentinel (an Error without message), so that
// errors.Is(err, ErrExhausted) works through wrapping and joins.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Reason == e.Reason
}

// Sentinels for errors.Is.
var (
	ErrInvalid     = &Error{Reason: ReasonInvalid}
	ErrNoEip       = &Error{Reason: ReasonNoEip}
	ErrUnavailable = &Error{Reason: ReasonUnavailable}
	ErrExhausted   = &Error{Reason: ReasonExhausted}
	ErrConflict    = &Error{Reason: ReasonConflict}
	ErrIsolation   = &Error{Reason: ReasonIsolation}
)

func errorf(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Msg: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the reason of the first *Error in err's tree, or "".
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
