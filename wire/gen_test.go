package wire

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
)

// gen makes messages from a stream of numbers: bytes from a fuzzer, or a
// seeded PRNG. It sets only the fields a message's kinds use, uses nil for
// empty slices (as the decoder does), and now and then breaks a rule (bad
// UTF-8, an unknown enum value) so that Validate and the decoder can be
// checked to agree.
type gen struct {
	next func() uint64
	bad  bool // allow rule-breaking values
}

// bytesGen reads numbers from data, then zeros.
func bytesGen(data []byte) *gen {
	return &gen{bad: true, next: func() uint64 {
		if len(data) == 0 {
			return 0
		}
		if len(data) < 8 {
			var b [8]byte
			copy(b[:], data)
			data = nil
			return binary.LittleEndian.Uint64(b[:])
		}
		x := binary.LittleEndian.Uint64(data)
		data = data[8:]
		return x
	}}
}

func randGen(seed uint64, bad bool) *gen {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &gen{bad: bad, next: r.Uint64}
}

func (g *gen) n(k int) int { return int(g.next() % uint64(k)) }

// rare is true about one time in 16, and only for a gen that breaks rules.
func (g *gen) rare() bool { return g.bad && g.n(16) == 0 }

func (g *gen) u64() uint64 {
	switch g.n(4) {
	case 0:
		return 0
	case 1:
		return uint64(g.n(300))
	case 2:
		return 1 << g.n(64)
	}
	return g.next()
}

func (g *gen) u32() uint32 { return uint32(g.u64()) }

func (g *gen) i64() int64 {
	if g.n(2) == 0 {
		return -int64(g.n(300))
	}
	return int64(g.u64())
}

func (g *gen) str() string {
	if g.rare() {
		return []string{"\xff", "a\xc0\xaf", "\xed\xa0\x80"}[g.n(3)]
	}
	return []string{"", "a", "weft", "héllo 世界", "a\x00b", "0123456789abcdef"}[g.n(6)]
}

func (g *gen) oid() ObjectID { return ObjectID{g.u64(), g.u64()} }
func (g *gen) cid() CommitID { return CommitID{g.u64(), g.u64()} }

func (g *gen) value() Value {
	if g.rare() {
		return Value{kind: ValueKind(8 + g.n(248))}
	}
	switch ValueKind(g.n(int(numKinds))) {
	case KindBool:
		return Bool(g.n(2) == 1)
	case KindInt:
		return Int(g.i64())
	case KindUint:
		return Uint(g.u64())
	case KindFloat:
		return Value{kind: KindFloat, num: []uint64{0, 1 << 63, canonicalNaN, math.Float64bits(1.5), g.next()}[g.n(5)]}
	case KindString:
		return String(g.str())
	case KindBytes:
		return Bytes([]byte(g.str()))
	case KindRef:
		return Ref(g.oid())
	}
	return Value{}
}

func (g *gen) count() int { return g.n(4) }

func (g *gen) values() []Value {
	n := g.count()
	if n == 0 {
		return nil
	}
	vs := make([]Value, n)
	for i := range vs {
		vs[i] = g.value()
	}
	return vs
}

func (g *gen) fields() []Field {
	n := g.count()
	if n == 0 {
		return nil
	}
	fs := make([]Field, n)
	for i := range fs {
		fs[i] = Field{ID: g.u32(), Value: g.value()}
	}
	return fs
}

func (g *gen) read() Read {
	r := Read{Object: g.oid(), Kind: ReadKind(g.n(4)), Version: g.u64()}
	if g.rare() {
		r.Kind = ReadKind(4 + g.n(252))
	}
	switch r.Kind {
	case ReadField:
		r.Field = g.u32()
	case ReadKey:
		r.Key = g.value()
	case ReadIndex:
		r.Index = g.u64()
	}
	return r
}

func (g *gen) reads() []Read {
	n := g.count()
	if n == 0 {
		return nil
	}
	rs := make([]Read, n)
	for i := range rs {
		rs[i] = g.read()
	}
	return rs
}

func (g *gen) objectKind() ObjectKind {
	if g.rare() {
		return ObjectKind([]int{0, 7, 255}[g.n(3)])
	}
	return ObjectKind(1 + g.n(6))
}

func (g *gen) op() Op {
	op := Op{Kind: OpKind(1 + g.n(11)), Object: g.oid()}
	if g.rare() {
		op.Kind = OpKind([]int{0, 12, 255}[g.n(3)])
	}
	switch op.Kind {
	case OpSetField:
		op.Field, op.Value = g.u32(), g.value()
	case OpVarSet:
		op.Value = g.value()
	case OpCounterAdd:
		op.Delta = g.i64()
	case OpMapPut:
		op.Key, op.Value = g.value(), g.value()
	case OpMapDelete, OpSetAdd, OpSetRemove:
		op.Key = g.value()
	case OpListSet:
		op.Index, op.Value = g.u64(), g.value()
	case OpListAppend:
		op.Values = g.values()
	case OpCreate:
		op.Class, op.ObjectKind = g.u32(), g.objectKind()
		if op.ObjectKind == ObjectRecord || g.rare() {
			op.Fields = g.fields()
		}
	}
	return op
}

func (g *gen) ops() []Op {
	n := g.count()
	if n == 0 {
		return nil
	}
	ops := make([]Op, n)
	for i := range ops {
		ops[i] = g.op()
	}
	return ops
}

func (g *gen) object() Object {
	o := Object{ID: g.oid(), Class: g.u32(), Kind: g.objectKind()}
	switch o.Kind {
	case ObjectRecord:
		o.Fields = g.fields()
	case ObjectVar:
		o.Value = g.value()
	case ObjectCounter:
		o.Counter = g.i64()
	case ObjectMap:
		if n := g.count(); n > 0 {
			o.Entries = make([]Entry, n)
			for i := range o.Entries {
				o.Entries[i] = Entry{g.value(), g.value()}
			}
		}
	case ObjectSet, ObjectList:
		o.Elems = g.values()
	}
	return o
}

func (g *gen) cids() []CommitID {
	n := g.count()
	if n == 0 {
		return nil
	}
	ids := make([]CommitID, n)
	for i := range ids {
		ids[i] = g.cid()
	}
	return ids
}

func (g *gen) limits() Limits {
	var l Limits
	for _, f := range l.fields() {
		switch g.n(4) {
		case 0:
		case 1:
			*f = 1 + g.n(3)
		case 2:
			*f = g.n(1 << 20)
		case 3:
			big := int64(math.MaxInt32)
			if g.rare() {
				big++ // over what a peer accepts
			}
			*f = int(big)
		}
	}
	return l
}

func (g *gen) message() Message {
	types := Types()
	switch types[g.n(len(types))] {
	case TypeHello:
		return &Hello{MinVersion: g.u32(), MaxVersion: g.u32(), Replica: g.u64(), Token: g.str(), Agent: g.str()}
	case TypeWelcome:
		return &Welcome{Version: g.u32(), Session: g.u64(), HeartbeatMillis: g.u32(), Limits: g.limits()}
	case TypeError:
		return &Error{Code: Code(g.u32()), Message: g.str()}
	case TypePing:
		return &Ping{Nonce: g.u64()}
	case TypePong:
		return &Pong{Nonce: g.u64()}
	case TypeOpenShare:
		return &OpenShare{Share: ShareHandle(g.u32()), Name: g.str(), Have: g.u64(), Epoch: Epoch{g.u64(), g.u64()}}
	case TypeOpened:
		m := &Opened{Share: ShareHandle(g.u32()), Version: g.u64(), Access: Access(1 + g.n(2)), Transfer: Transfer(g.n(3)), Epoch: Epoch{g.u64(), g.u64()}}
		if g.rare() {
			m.Access = Access([]int{0, 3}[g.n(2)])
		}
		if g.rare() {
			m.Transfer = 3
		}
		return m
	case TypeSnapshotChunk:
		m := &SnapshotChunk{Share: ShareHandle(g.u32()), More: g.n(2) == 1}
		if n := g.count(); n > 0 {
			m.Objects = make([]Object, n)
			for i := range m.Objects {
				m.Objects[i] = g.object()
			}
		}
		return m
	case TypeDelta:
		m := &Delta{Share: ShareHandle(g.u32()), More: g.n(2) == 1}
		if n := g.count(); n > 0 {
			m.Changes = make([]Change, n)
			for i := range m.Changes {
				m.Changes[i] = Change{Version: g.u64(), Origin: g.cid(), Writes: g.ops()}
			}
		}
		return m
	case TypeCloseShare:
		return &CloseShare{Share: ShareHandle(g.u32())}
	case TypeShareClosed:
		return &ShareClosed{Share: ShareHandle(g.u32()), Code: Code(g.u32()), Message: g.str()}
	case TypeCommit:
		return &Commit{ID: g.cid(), Share: ShareHandle(g.u32()), Snapshot: g.u64(), Deps: g.cids(), Reads: g.reads(), Writes: g.ops()}
	case TypeAck:
		return &Ack{ID: g.cid(), Version: g.u64()}
	case TypeAbort:
		return &Abort{ID: g.cid(), Code: Code(g.u32()), Message: g.str(), Conflicts: g.reads()}
	case TypeUpdate:
		return &Update{Share: ShareHandle(g.u32()), Version: g.u64(), Origin: g.cid(), Writes: g.ops()}
	}
	panic("unreachable")
}
