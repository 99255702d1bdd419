// Runs against kitchen.go.golden in the scratch module of
// TestGoldenCompiles: the generated code must not only compile but work.

package kitchen

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/weft-stm/weft/stm"
)

func atomically(t *testing.T, ws *stm.Workspace, fn func(tx *stm.Tx)) {
	t.Helper()
	if err := ws.Atomically(context.Background(), func(tx *stm.Tx) error { fn(tx); return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestScalars(t *testing.T) {
	ws := stm.NewWorkspace()
	defer ws.Close()
	s := NewScalars(ws)
	blob := []byte("abc")
	atomically(t, ws, func(tx *stm.Tx) {
		s.SetFlag(tx, true)
		s.SetI8(tx, -8)
		s.SetU64(tx, 1<<63)
		s.SetF32(tx, 1.5)
		s.SetText(tx, "text")
		s.SetBlob(tx, blob)
		s.SetAvatarURL(tx, "https://example.com/a.png")
	})
	blob[0] = 'X' // the setter copied it
	s.SetUserID(stm.Auto, 42)
	atomically(t, ws, func(tx *stm.Tx) {
		if !s.Flag(tx) || s.I8(tx) != -8 || s.U64(tx) != 1<<63 || s.F32(tx) != 1.5 || s.Text(tx) != "text" || s.UserID(tx) != 42 {
			t.Errorf("read back %v %v %v %v %q %v", s.Flag(tx), s.I8(tx), s.U64(tx), s.F32(tx), s.Text(tx), s.UserID(tx))
		}
		got := s.Blob(tx)
		if !bytes.Equal(got, []byte("abc")) {
			t.Errorf("blob %q", got)
		}
		got[0] = 'Y' // the getter returned a copy
		if !bytes.Equal(s.Blob(tx), []byte("abc")) {
			t.Errorf("blob changed through a returned slice: %q", s.Blob(tx))
		}
		if s.I16(tx) != 0 || s.AvatarURL(tx) == "" {
			t.Errorf("zero value or url wrong")
		}
	})
	if ScalarsClass.Name() != "Scalars" || ScalarsClass.ID() != 1 || len(ScalarsClass.Fields()) != 15 {
		t.Errorf("class %s %d %d", ScalarsClass.Name(), ScalarsClass.ID(), len(ScalarsClass.Fields()))
	}
	if ScalarsFields.UserID.ID() != 15 || ScalarsFields.UserID.Name() != "user_id" {
		t.Errorf("handle %d %s", ScalarsFields.UserID.ID(), ScalarsFields.UserID.Name())
	}
}

func TestReferences(t *testing.T) {
	ws := stm.NewWorkspace()
	defer ws.Close()
	a, b, c := NewVertex(ws), NewVertex(ws), NewVertex(ws)
	owner := NewOwner(ws)
	atomically(t, ws, func(tx *stm.Tx) {
		a.SetLabel(tx, "a")
		b.SetLabel(tx, "b")
		c.SetLabel(tx, "c")
		a.SetNext(tx, b)
		b.SetNext(tx, a) // a cycle
		if !a.Edges().Add(tx, b) || a.Edges().Add(tx, b) {
			t.Error("Add did not report absence")
		}
		a.Edges().AddFast(tx, c)
		a.Path().Append(tx, a, b, c)
		a.Path().Set(tx, 2, a)
		a.ByName().PutFast(tx, "b", b)
		if _, existed := a.ByName().Put(tx, "c", c); existed {
			t.Error("Put: c existed")
		}
		a.Weights().PutFast(tx, 7, 0.5)
		a.Visits().Add(tx, 3)
		a.Marks().AddFast(tx, -1)
		a.SetOwner(tx, owner)
		owner.Vertices().Append(tx, a)
	})
	atomically(t, ws, func(tx *stm.Tx) {
		if a.Next(tx).Next(tx).Label(tx) != "a" {
			t.Error("cycle not followed")
		}
		if c.Next(tx).Object != nil {
			t.Error("unset ref is not the zero Vertex")
		}
		if a.Edges().Len(tx) != 2 || !a.Edges().Contains(tx, c) || a.Edges().Contains(tx, a) {
			t.Error("edges")
		}
		var labels string
		for v := range a.Edges().All(tx) {
			labels += v.Label(tx)
		}
		if len(labels) != 2 {
			t.Errorf("edges All %q", labels)
		}
		labels = ""
		for i, v := range a.Path().All(tx) {
			if a.Path().Get(tx, i) != v {
				t.Error("path Get and All differ")
			}
			labels += v.Label(tx)
		}
		if labels != "aba" || a.Path().Len(tx) != 3 {
			t.Errorf("path %q", labels)
		}
		if v, ok := a.ByName().Get(tx, "c"); !ok || v != c || a.ByName().Len(tx) != 2 || !a.ByName().Contains(tx, "b") {
			t.Error("by_name")
		}
		for k, v := range a.ByName().All(tx) {
			if v.Label(tx) != k {
				t.Errorf("by_name %s -> %s", k, v.Label(tx))
			}
		}
		if old, _ := a.ByName().Put(tx, "c", b); old != c {
			t.Error("Put old value")
		}
		if !a.ByName().Delete(tx, "c") {
			t.Error("Delete")
		}
		a.ByName().DeleteFast(tx, "b")
		a.Edges().RemoveFast(tx, c)
		if !a.Edges().Remove(tx, b) {
			t.Error("Remove")
		}
		if w, _ := a.Weights().Get(tx, 7); w != 0.5 || a.Visits().Get(tx) != 3 || !a.Marks().Contains(tx, -1) {
			t.Error("scalar collections")
		}
		if a.Owner(tx).Vertices().Get(tx, 0) != a {
			t.Error("owner")
		}
	})

	if v, ok := AsVertex(a.Object); !ok || v != a {
		t.Error("AsVertex")
	}
	if _, ok := AsOwner(a.Object); ok {
		t.Error("AsOwner accepted a Vertex")
	}
	if _, ok := AsVertex(nil); ok {
		t.Error("AsVertex(nil)")
	}
}

func TestObservers(t *testing.T) {
	ws := stm.NewWorkspace()
	defer ws.Close()
	v := NewVertex(ws)
	label := make(chan stm.Change, 4)
	whole := make(chan stm.Change, 4)
	defer v.ObserveLabel(func(c stm.Change) { label <- c }).Close()
	defer v.Observe(func(c stm.Change) { whole <- c }).Close()

	v.Visits().Add(stm.Auto, 1) // not the label
	v.SetLabel(stm.Auto, "x")
	wait := func(ch chan stm.Change) stm.Change {
		select {
		case c := <-ch:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("observer not called")
			return stm.Change{}
		}
	}
	if c := wait(label); c.Commits != 1 {
		t.Errorf("label change %+v", c)
	}
	var fields []stm.FieldID
	for len(fields) < 2 {
		fields = append(fields, wait(whole).Fields...)
	}
	if len(fields) != 2 {
		t.Errorf("object changes %v", fields)
	}
}
