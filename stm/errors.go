package stm

import (
	"errors"
	"fmt"
)

var (
	// ErrConflict is matched (errors.Is) by every *ConflictError.
	ErrConflict = errors.New("stm: conflict")
	// ErrRetry is returned by Tx.Retry; Atomically waits for a change and re-runs.
	ErrRetry = errors.New("stm: retry")
	// ErrTxDone is returned when a transaction is committed or aborted twice.
	ErrTxDone = errors.New("stm: transaction already committed or aborted")
	// ErrReadOnly is returned by the commit of a read-only transaction that wrote.
	ErrReadOnly = errors.New("stm: write in a read-only transaction")
	// ErrWrongWorkspace: a transaction touched an object of another
	// workspace. The touch panics with this error, so that fn stops before
	// it reads anything of the other workspace; Atomically, View and Run
	// recover it, roll back, and return it.
	ErrWrongWorkspace = errors.New("stm: object belongs to another workspace")
	// ErrRetired: a transaction touched, or stored a reference to, an
	// object its owner retired (see Retire; a client retires the objects
	// of a share once it is closed). The touch panics and is recovered
	// as ErrWrongWorkspace is.
	ErrRetired = errors.New("stm: object retired (its share was closed)")
	// ErrEndInFn: fn called Commit, Abort or AwaitChange on the
	// transaction Atomically (or View, Run, Call) runs it in, which
	// commits it itself once fn returns. Commit and AwaitChange return it;
	// Abort panics with it. Return an error from fn to abandon it.
	ErrEndInFn = errors.New("stm: Commit, Abort or AwaitChange inside the function of Atomically, View, Run or Call: return from it instead")
	// ErrClosed is returned once the workspace is closed.
	ErrClosed = errors.New("stm: workspace closed")
	// ErrRetryNothingRead is returned when a transaction calls Retry without
	// having read anything: no change could ever wake it.
	ErrRetryNothingRead = errors.New("stm: Retry in a transaction that read nothing would block forever")
	// ErrAborted is the error of a handle whose transaction was aborted by
	// the application (Tx.Abort) or by the authority without a conflict.
	ErrAborted = errors.New("stm: transaction aborted")
)

// ConflictError says which read of a transaction was invalidated by a commit
// that happened after its snapshot.
type ConflictError struct {
	Object  ID      // the object read (for a record field, the record)
	Field   FieldID // the field of a record, or 0
	Name    string  // the field's name, if known
	Key     any     // the map key, set element or list index, or nil
	What    string  // what was read when it is not a key: "value", "length", "contents"
	Version uint64  // the version that invalidated the read
}

func (e *ConflictError) Error() string {
	s := fmt.Sprintf("stm: conflict on object %v", e.Object)
	if e.Field != 0 || e.Name != "" {
		s += fmt.Sprintf(" field %d", e.Field)
		if e.Name != "" {
			s += fmt.Sprintf(" (%s)", e.Name)
		}
	}
	if e.Key != nil {
		s += fmt.Sprintf(" key %v", e.Key)
	} else if e.What != "" {
		s += " " + e.What
	}
	if e.Version != 0 {
		s += fmt.Sprintf(": changed at version %d", e.Version)
	}
	return s
}

// Is makes errors.Is(err, ErrConflict) true for every conflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// conflict builds the error for a read of c invalidated at version ver.
func conflict(b *base, key any, what string, ver uint64) *ConflictError {
	e := &ConflictError{Object: b.id, Key: key, What: what, Version: ver}
	if b.owner != nil {
		e.Object = b.owner.id
		e.Field = b.field
		e.Name = b.fieldName
	}
	return e
}
