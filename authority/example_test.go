package authority_test

import (
	"fmt"

	"github.com/weft-stm/weft/authority"
	"github.com/weft-stm/weft/wire"
)

func Example() {
	s := authority.New("board")
	note := wire.ObjectID{Replica: 7, Seq: 1}
	r := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 7, Seq: 1}, Writes: []wire.Op{
		{Kind: wire.OpCreate, Object: note, ObjectKind: wire.ObjectVar},
		{Kind: wire.OpVarSet, Object: note, Value: wire.String("hello")},
	}})
	fmt.Println(r.Ack, r.Version, len(r.Update(1).Writes))

	// A commit that read the note at version 0 (before it existed) aborts.
	r = s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 8, Seq: 1},
		Reads:  []wire.Read{{Object: note, Kind: wire.ReadWhole, Version: 0}},
		Writes: []wire.Op{{Kind: wire.OpVarSet, Object: note, Value: wire.String("bye")}}})
	abort := r.Reply().(*wire.Abort)
	fmt.Println(abort.Code, abort.Conflicts[0].Version, s.Version())
	// Output:
	// true 1 2
	// conflict 1 1
}
