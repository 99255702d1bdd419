package check

import (
	"slices"
	"strconv"
)

// Kind is the class of an anomaly. Kinds sort in the order declared here,
// which is the order Result.Anomalies uses.
type Kind uint8

// Anomaly kinds. See doc.go for what each means in Weft.
const (
	G0                Kind = iota // cycle of write-write edges only
	G1a                           // a committed transaction read an aborted write
	G1b                           // a committed transaction read an intermediate write
	G1c                           // cycle of ww and wr edges, at least one wr
	GSingle                       // cycle with exactly one rw edge
	G2                            // cycle with two or more rw edges
	LostWrite                     // a committed write missing from the final state
	AbortedVisible                // an aborted write in the final state
	GarbageRead                   // a read saw a value nobody wrote
	Internal                      // a read ignored its own transaction's earlier writes
	IncompatibleOrder             // two reads of a list are not prefixes of one another
	StaleRead                     // a read misses a write acked at or before its version
	VersionOrder                  // a dependency cycle through the server's version order
	DuplicateVersion              // two commits got the same version of a share
	RealTime                      // a commit acked before another started got a higher version
	Malformed                     // the history breaks the input contract
	DuplicateWrite                // a read saw one write twice: it was applied twice
	numKinds
)

var kindNames = [numKinds]string{
	"G0", "G1a", "G1b", "G1c", "G-single", "G2", "lost-write",
	"aborted-visible", "garbage-read", "internal", "incompatible-order", "stale-read",
	"version-order", "duplicate-version", "real-time", "malformed", "duplicate-write",
}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Anomaly is one finding. For a cycle, Txns lists the cycle's transactions
// in edge order (each precedes the next, the last precedes the first);
// otherwise the transactions involved, as the explanation names them.
type Anomaly struct {
	Kind        Kind
	Txns        []TxnID
	Explanation string
}

// Result is the checker's verdict.
type Result struct {
	Anomalies []Anomaly
	Counts    map[Kind]int // anomalies per kind; absent kinds are zero
	Txns      int          // transactions in the history
	Committed int          // of which acknowledged, promoted or final: the graph's nodes
	Edges     int          // dependency edges (distinct ordered pairs)
	// Truncated is true if the cycle search gave up on a huge component
	// before classifying every cycle class; the component is still reported.
	Truncated bool
}

// OK reports whether no anomaly was found.
func (r *Result) OK() bool { return len(r.Anomalies) == 0 }

func sortAnomalies(as []Anomaly) {
	slices.SortStableFunc(as, func(a, b Anomaly) int {
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		for i := 0; i < len(a.Txns) && i < len(b.Txns); i++ {
			if a.Txns[i] != b.Txns[i] {
				if a.Txns[i].less(b.Txns[i]) {
					return -1
				}
				return 1
			}
		}
		if len(a.Txns) != len(b.Txns) {
			return len(a.Txns) - len(b.Txns)
		}
		if a.Explanation < b.Explanation {
			return -1
		}
		if a.Explanation > b.Explanation {
			return 1
		}
		return 0
	})
}
