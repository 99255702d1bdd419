package check

import "strconv"

// TxnID names a transaction. It has the layout of wire.CommitID, so a
// recorder converts with check.TxnID(id) without this package importing the
// protocol.
type TxnID struct {
	Replica uint64
	Seq     uint64
}

func (id TxnID) String() string {
	return strconv.FormatUint(id.Replica, 10) + ":" + strconv.FormatUint(id.Seq, 10)
}

func (id TxnID) less(o TxnID) bool {
	if id.Replica != o.Replica {
		return id.Replica < o.Replica
	}
	return id.Seq < o.Seq
}

// Outcome is what the client learned about a commit.
type Outcome uint8

// Outcomes. The zero value is Unknown on purpose: a recorder that forgets
// to record a verdict makes the checker conservative, not wrong.
const (
	// Unknown: the client never learned the verdict (timeout, lost
	// connection, crash). The commit may or may not have happened.
	Unknown Outcome = iota
	// Acknowledged: the server acked the commit (Txn.Version is the share
	// version it created, or 0 if it has none, e.g. a local read-only
	// transaction).
	Acknowledged
	// Aborted: the server said the commit failed and changed nothing.
	Aborted
)

func (o Outcome) String() string {
	switch o {
	case Unknown:
		return "unknown"
	case Acknowledged:
		return "acknowledged"
	case Aborted:
		return "aborted"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// OpKind is the kind of one operation of a transaction.
type OpKind uint8

// Operation kinds. A key is used either as a list (Append, ReadList) or as
// a register (Write, ReadReg), never both.
const (
	// Append appends Value to the list Key.
	Append OpKind = iota + 1
	// Write sets the register Key to Value.
	Write
	// ReadList read the whole list Key and saw List.
	ReadList
	// ReadReg read the register Key and saw Value (0: never written).
	ReadReg
)

func (k OpKind) String() string {
	switch k {
	case Append:
		return "append"
	case Write:
		return "write"
	case ReadList:
		return "read-list"
	case ReadReg:
		return "read-reg"
	}
	return "opkind(" + strconv.Itoa(int(k)) + ")"
}

// Op is one operation, in the order the transaction performed it.
//
// Written values must be non-zero and unique per key across the whole
// history: that is what lets the checker tell, from a value alone, which
// write a read saw.
type Op struct {
	Kind  OpKind
	Key   string   // names the object part (e.g. "obj 1:7 field 3"); scoped by Txn.Share
	Value uint64   // Append, Write: the value written; ReadReg: the value seen
	List  []uint64 // ReadList: the elements seen, in order
	// At is, for a read, the share version of the state it saw (wire
	// Read.Version), or 0 if unknown. A read at version v must reflect every
	// acknowledged write with a version <= v.
	At uint64
}

// Txn is one transaction as a client observed it.
type Txn struct {
	ID      TxnID
	Share   string // keys of different shares are unrelated; versions are per share
	Session uint64 // the client session it ran on; kept for diagnosis, not checked
	Outcome Outcome
	// Version is the share version the server assigned (Acknowledged only;
	// 0 if none).
	Version uint64
	// Start and End are when the client sent the commit and when it got the
	// verdict, in any monotonic unit (simulated time). End == 0 means
	// unknown; the real-time check skips such transactions.
	Start, End int64
	Ops        []Op
	// Final marks a read-only observation made after every other
	// transaction had ended and the system had settled: it must see every
	// committed write and no aborted one. Its Outcome and Version are
	// ignored.
	Final bool
}

// History is everything the clients observed. Order does not matter to the
// verdict; it only makes the output deterministic.
type History struct {
	Txns []Txn
}
