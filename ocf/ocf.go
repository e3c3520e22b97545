// Package ocf is the runtime shared by storhaug's OCF resource agents.
//
// An agent is declared once, as an [Agent] value: its name, descriptions,
// parameters and actions. From that declaration the package derives
// everything Pacemaker and the admin see: typed parameter values read from
// OCF_RESKEY_*, meta-data XML (OCF 1.0, or 1.1 when the caller speaks it),
// action dispatch, exit codes and exit reasons, logging in the shape
// resource-agents uses, probe detection, and an operation deadline derived
// from the operation's timeout.
//
// The same declaration renders the agent's reference pages
// ([Agent.WriteMarkdown], [Agent.WriteMan]), so they cannot drift from its
// meta-data.
//
// A handler returns nil for success or an error; [Exit] and [Errorf] build
// errors that carry an OCF exit code and a reason for the admin. Any other
// error is OCF_ERR_GENERIC with the error's text as the reason.
package ocf

import (
	"errors"
	"fmt"
)

// Code is an OCF exit code.
type Code int

// The OCF exit codes (OCF resource-agent API 1.1).
const (
	Success          Code = 0
	ErrGeneric       Code = 1
	ErrArgs          Code = 2
	ErrUnimplemented Code = 3
	ErrPerm          Code = 4
	ErrInstalled     Code = 5
	ErrConfigured    Code = 6
	NotRunning       Code = 7
	RunningPromoted  Code = 8
	FailedPromoted   Code = 9
	Degraded         Code = 190
	DegradedPromoted Code = 191
)

// String returns the code's OCF name, such as "OCF_NOT_RUNNING".
func (c Code) String() string {
	switch c {
	case Success:
		return "OCF_SUCCESS"
	case ErrGeneric:
		return "OCF_ERR_GENERIC"
	case ErrArgs:
		return "OCF_ERR_ARGS"
	case ErrUnimplemented:
		return "OCF_ERR_UNIMPLEMENTED"
	case ErrPerm:
		return "OCF_ERR_PERM"
	case ErrInstalled:
		return "OCF_ERR_INSTALLED"
	case ErrConfigured:
		return "OCF_ERR_CONFIGURED"
	case NotRunning:
		return "OCF_NOT_RUNNING"
	case RunningPromoted:
		return "OCF_RUNNING_PROMOTED"
	case FailedPromoted:
		return "OCF_FAILED_PROMOTED"
	case Degraded:
		return "OCF_DEGRADED"
	case DegradedPromoted:
		return "OCF_DEGRADED_PROMOTED"
	}
	return fmt.Sprintf("OCF_CODE_%d", int(c))
}

// Error is an outcome with an exit code other than success, and the reason
// the admin is shown (Pacemaker's "exit-reason").
type Error struct {
	Code   Code
	Reason string
	Err    error // the underlying error, if any
}

func (e *Error) Error() string {
	if e.Reason != "" {
		return e.Reason
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	return e.Code.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Exit returns an outcome with code and no reason, for results that are not
// failures, such as NotRunning from a monitor or RunningPromoted.
func Exit(code Code) error {
	if code == Success {
		return nil
	}
	return &Error{Code: code}
}

// Errorf returns an outcome with code and a reason formatted as by
// fmt.Errorf; a %w verb keeps the wrapped error reachable by errors.Is/As.
func Errorf(code Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Reason: err.Error(), Err: errors.Unwrap(err)}
}

// CodeOf returns the exit code an error stands for: Success for nil, the
// code of an *Error anywhere in its chain, ErrGeneric otherwise.
func CodeOf(err error) Code {
	if err == nil {
		return Success
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ErrGeneric
}
