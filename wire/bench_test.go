package wire

import "testing"

// typicalCommit is a small transaction: a few field and key reads, a field
// write, a counter increment and a map put, chained on one pending commit.
func typicalCommit() *Commit {
	return &Commit{
		ID:       CommitID{Replica: 0x5eed_f00d_cafe_0001, Seq: 1042},
		Share:    3,
		Snapshot: 981_223,
		Deps:     []CommitID{{Replica: 0x5eed_f00d_cafe_0001, Seq: 1041}},
		Reads: []Read{
			{Object: ObjectID{1, 77}, Kind: ReadField, Field: 2, Version: 981_200},
			{Object: ObjectID{1, 77}, Kind: ReadField, Field: 5, Version: 981_223},
			{Object: ObjectID{1, 80}, Kind: ReadKey, Key: String("alice"), Version: 980_001},
			{Object: ObjectID{4, 12}, Kind: ReadWhole, Version: 981_223},
			{Object: ObjectID{4, 13}, Kind: ReadIndex, Index: 17, Version: 979_999},
		},
		Writes: []Op{
			{Kind: OpSetField, Object: ObjectID{1, 77}, Field: 2, Value: String("Card title, edited")},
			{Kind: OpCounterAdd, Object: ObjectID{4, 12}, Delta: 1},
			{Kind: OpMapPut, Object: ObjectID{1, 80}, Key: String("alice"), Value: Int(42)},
		},
	}
}

// typicalUpdate is the broadcast of typicalCommit's writes.
func typicalUpdate() *Update {
	c := typicalCommit()
	return &Update{Share: c.Share, Version: c.Snapshot + 1, Origin: c.ID, Writes: c.Writes}
}

func benchEncode(b *testing.B, m Message) {
	buf := AppendFrame(nil, m)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendFrame(buf[:0], m)
	}
}

func benchDecode(b *testing.B, m Message) {
	frame := AppendFrame(nil, m)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewDecoder(frame, Limits{}).Decode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeCommit(b *testing.B) { benchEncode(b, typicalCommit()) }
func BenchmarkDecodeCommit(b *testing.B) { benchDecode(b, typicalCommit()) }
func BenchmarkEncodeUpdate(b *testing.B) { benchEncode(b, typicalUpdate()) }
func BenchmarkDecodeUpdate(b *testing.B) { benchDecode(b, typicalUpdate()) }

func BenchmarkCheckCommit(b *testing.B) {
	m := typicalCommit()
	b.ReportAllocs()
	for b.Loop() {
		if err := Check(m, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateCommit(b *testing.B) {
	m := typicalCommit()
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(m, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
