package wire

import (
	"encoding/binary"
	"math/bits"
)

// The encoders append to a slice and cannot fail. They encode what they are
// given: a message that breaks a limit or holds invalid UTF-8 encodes, and
// the peer's decoder rejects it. Validate (or Writer) checks first.

// AppendMessage appends the body of m's frame (its type byte and payload,
// without the length prefix) to b.
func AppendMessage(b []byte, m Message) []byte {
	b = append(b, byte(m.Type()))
	return m.appendPayload(b)
}

// AppendFrame appends m's frame (length prefix, type byte and payload) to b.
func AppendFrame(b []byte, m Message) []byte {
	start := len(b)
	b = AppendMessage(b, m)
	n := len(b) - start
	h := uvarintLen(uint64(n))
	// Make room for the prefix and slide the body right.
	b = append(b, make([]byte, h)...)
	copy(b[start+h:], b[start:start+n])
	binary.PutUvarint(b[start:], uint64(n))
	return b
}

// AppendValue appends the encoding of v to b.
func AppendValue(b []byte, v Value) []byte {
	b = append(b, byte(v.kind))
	switch v.kind {
	case KindBool:
		b = append(b, byte(v.num))
	case KindInt:
		b = appendVarint(b, int64(v.num))
	case KindUint:
		b = binary.AppendUvarint(b, v.num)
	case KindFloat:
		b = binary.LittleEndian.AppendUint64(b, v.num)
	case KindString, KindBytes:
		b = appendString(b, v.str)
	case KindRef:
		b = binary.AppendUvarint(b, v.num)
		b = binary.AppendUvarint(b, v.seq)
	}
	return b
}

// ValueSize returns the length of v's encoding (AppendValue), without
// encoding it.
func ValueSize(v Value) int {
	switch v.kind {
	case KindBool:
		return 2
	case KindInt:
		x := int64(v.num)
		return 1 + uvarintLen(uint64(x<<1)^uint64(x>>63))
	case KindUint:
		return 1 + uvarintLen(v.num)
	case KindFloat:
		return 9
	case KindString, KindBytes:
		return 1 + uvarintLen(uint64(len(v.str))) + len(v.str)
	case KindRef:
		return 1 + uvarintLen(v.num) + uvarintLen(v.seq)
	}
	return 1
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

func appendUvarint(b []byte, x uint64) []byte { return binary.AppendUvarint(b, x) }

// appendVarint appends the zigzag varint of x.
func appendVarint(b []byte, x int64) []byte {
	return binary.AppendUvarint(b, uint64(x<<1)^uint64(x>>63))
}

func appendBool(b []byte, x bool) []byte {
	if x {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendPair(b []byte, a, c uint64) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(b, a), c)
}

func appendRead(b []byte, r *Read) []byte {
	b = appendPair(b, r.Object.Replica, r.Object.Seq)
	b = append(b, byte(r.Kind))
	switch r.Kind {
	case ReadField:
		b = appendUvarint(b, uint64(r.Field))
	case ReadKey:
		b = AppendValue(b, r.Key)
	case ReadIndex:
		b = appendUvarint(b, r.Index)
	}
	return appendUvarint(b, r.Version)
}

func appendReads(b []byte, rs []Read) []byte {
	b = appendUvarint(b, uint64(len(rs)))
	for i := range rs {
		b = appendRead(b, &rs[i])
	}
	return b
}

func appendFields(b []byte, fs []Field) []byte {
	b = appendUvarint(b, uint64(len(fs)))
	for _, f := range fs {
		b = appendUvarint(b, uint64(f.ID))
		b = AppendValue(b, f.Value)
	}
	return b
}

func appendValues(b []byte, vs []Value) []byte {
	b = appendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		b = AppendValue(b, v)
	}
	return b
}

func appendOp(b []byte, op *Op) []byte {
	b = append(b, byte(op.Kind))
	b = appendPair(b, op.Object.Replica, op.Object.Seq)
	switch op.Kind {
	case OpSetField:
		b = appendUvarint(b, uint64(op.Field))
		b = AppendValue(b, op.Value)
	case OpVarSet:
		b = AppendValue(b, op.Value)
	case OpCounterAdd:
		b = appendVarint(b, op.Delta)
	case OpMapPut:
		b = AppendValue(b, op.Key)
		b = AppendValue(b, op.Value)
	case OpMapDelete, OpSetAdd, OpSetRemove:
		b = AppendValue(b, op.Key)
	case OpListSet:
		b = appendUvarint(b, op.Index)
		b = AppendValue(b, op.Value)
	case OpListAppend:
		b = appendValues(b, op.Values)
	case OpCreate:
		b = appendUvarint(b, uint64(op.Class))
		b = append(b, byte(op.ObjectKind))
		b = appendFields(b, op.Fields)
	case OpRemove:
	}
	return b
}

func appendOps(b []byte, ops []Op) []byte {
	b = appendUvarint(b, uint64(len(ops)))
	for i := range ops {
		b = appendOp(b, &ops[i])
	}
	return b
}

func appendObject(b []byte, o *Object) []byte {
	b = appendPair(b, o.ID.Replica, o.ID.Seq)
	b = appendUvarint(b, uint64(o.Class))
	b = append(b, byte(o.Kind))
	switch o.Kind {
	case ObjectRecord:
		b = appendFields(b, o.Fields)
	case ObjectVar:
		b = AppendValue(b, o.Value)
	case ObjectCounter:
		b = appendVarint(b, o.Counter)
	case ObjectMap:
		b = appendUvarint(b, uint64(len(o.Entries)))
		for _, e := range o.Entries {
			b = AppendValue(b, e.Key)
			b = AppendValue(b, e.Value)
		}
	case ObjectSet, ObjectList:
		b = appendValues(b, o.Elems)
	}
	return b
}

func (m *Hello) appendPayload(b []byte) []byte {
	b = appendUvarint(b, uint64(m.MinVersion))
	b = appendUvarint(b, uint64(m.MaxVersion))
	b = appendUvarint(b, m.Replica)
	b = appendString(b, m.Token)
	return appendString(b, m.Agent)
}

func (m *Welcome) appendPayload(b []byte) []byte {
	b = appendUvarint(b, uint64(m.Version))
	b = appendUvarint(b, m.Session)
	b = appendUvarint(b, uint64(m.HeartbeatMillis))
	for _, f := range m.Limits.fields() {
		b = appendUvarint(b, uint64(max(*f, 0)))
	}
	return b
}

func (m *Error) appendPayload(b []byte) []byte {
	b = appendUvarint(b, uint64(m.Code))
	return appendString(b, m.Message)
}

func (m *Ping) appendPayload(b []byte) []byte { return appendUvarint(b, m.Nonce) }
func (m *Pong) appendPayload(b []byte) []byte { return appendUvarint(b, m.Nonce) }

func (m *OpenShare) appendPayload(b []byte) []byte {
	b = appendUvarint(b, uint64(m.Share))
	b = appendString(b, m.Name)
	b = appendUvarint(b, m.Have)
	return appendEpoch(b, m.Epoch)
}

func (m *Opened) appendPayload(b []byte) []byte {
	b = appendUvarint(b, uint64(m.Share))
	b = appendUvarint(b, m.Version)
	b = append(b, byte(m.Access), byte(m.Transfer))
	return appendEpoch(b, m.Epoch)
}

func appendEpoch(b []byte, e Epoch) []byte {
	b = appendUvarint(b, e.Version)
	return appendUvarint(b, e.ID)
}

func (m *SnapshotChunk) appendPayload(b []byte) []byte {
	b = appendUvarint(b, uint64(m.Share))
	b = appendBool(b, m.More)
	b = appendUvarint(b, uint64(len(m.Objects)))
	for i := range m.Objects {
		b = appendObject(b, &m.Objects[i])
	}
	return b
}

func (m *Delta) appendPayload(b []byte) []byte {
	b = appendUvarint(b, uint64(m.Share))
	b = appendBool(b, m.More)
	b = appendUvarint(b, uint64(len(m.Changes)))
	for i := range m.Changes {
		c := &m.Changes[i]
		b = appendUvarint(b, c.Version)
		b = appendPair(b, c.Origin.Replica, c.Origin.Seq)
		b = appendOps(b, c.Writes)
	}
	return b
}

func (m *CloseShare) appendPayload(b []byte) []byte { return appendUvarint(b, uint64(m.Share)) }

func (m *ShareClosed) appendPayload(b []byte) []byte {
	b = appendUvarint(b, uint64(m.Share))
	b = appendUvarint(b, uint64(m.Code))
	return appendString(b, m.Message)
}

func (m *Commit) appendPayload(b []byte) []byte {
	b = appendPair(b, m.ID.Replica, m.ID.Seq)
	b = appendUvarint(b, uint64(m.Share))
	b = appendUvarint(b, m.Snapshot)
	b = appendUvarint(b, uint64(len(m.Deps)))
	for _, d := range m.Deps {
		b = appendPair(b, d.Replica, d.Seq)
	}
	b = appendReads(b, m.Reads)
	return appendOps(b, m.Writes)
}

func (m *Ack) appendPayload(b []byte) []byte {
	b = appendPair(b, m.ID.Replica, m.ID.Seq)
	return appendUvarint(b, m.Version)
}

func (m *Abort) appendPayload(b []byte) []byte {
	b = appendPair(b, m.ID.Replica, m.ID.Seq)
	b = appendUvarint(b, uint64(m.Code))
	b = appendString(b, m.Message)
	return appendReads(b, m.Conflicts)
}

func (m *Update) appendPayload(b []byte) []byte {
	b = appendUvarint(b, uint64(m.Share))
	b = appendUvarint(b, m.Version)
	b = appendPair(b, m.Origin.Replica, m.Origin.Seq)
	return appendOps(b, m.Writes)
}
