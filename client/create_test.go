package client_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/wire"
)

// TestCreate: a record created by one client, with its collections filled
// in the same transaction, reaches another client (whose collections of it
// are usable) and a fresh snapshot; the creator's object is the share's.
func TestCreate(t *testing.T) {
	both(t, func(t *testing.T, tcp bool) {
		e := startServer(t, tcp, server.Config{})
		_, a := e.open("bank")
		_, b := e.open("bank")
		ctx := testCtx(t)
		var o *stm.Object
		if err := a.Atomically(ctx, func(tx *stm.Tx) error {
			o = a.Create(tx, account)
			balanceF.Of(o).Set(tx, 10)
			nameF.Of(o).Set(tx, "new")
			hitsF.Of(o).Add(tx, 2)
			tagsF.Of(o).PutFast(tx, "x", 1)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		id := stm.IDOf(o)
		if got, ok := a.Object(id); !ok || got != o {
			t.Fatalf("creator's index has %v, %v; want the created object", got, ok)
		}
		want := accountState{Balance: 10, Name: "new", Hits: 2, Tags: map[string]int64{"x": 1}}
		if err := b.WaitVersion(ctx, a.Version()); err != nil {
			t.Fatal(err)
		}
		_, got := snapshot(t, b)
		if !reflect.DeepEqual(got, map[wire.ObjectID]accountState{id: want}) {
			t.Fatalf("other client sees %+v, want %v: %+v", got, id, want)
		}
		// The other client writes to the new record's collections.
		x, _ := b.Object(id)
		ob := x.(*stm.Object)
		if err := b.Atomically(ctx, func(tx *stm.Tx) error {
			hitsF.Of(ob).Add(tx, 3)
			tagsF.Of(ob).PutFast(tx, "y", 2)
			balanceF.Of(ob).Set(tx, balanceF.Of(ob).Get(tx)-1)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := a.WaitVersion(ctx, b.Version()); err != nil {
			t.Fatal(err)
		}
		want = accountState{Balance: 9, Name: "new", Hits: 5, Tags: map[string]int64{"x": 1, "y": 2}}
		for name, s := range map[string]*client.Share{"creator": a, "other": b} {
			if _, got := snapshot(t, s); !reflect.DeepEqual(got[id], want) {
				t.Errorf("%s sees %+v, want %+v", name, got[id], want)
			}
		}
		_, fresh := e.open("bank")
		if _, got := snapshot(t, fresh); !reflect.DeepEqual(got, map[wire.ObjectID]accountState{id: want}) {
			t.Errorf("fresh snapshot %+v, want %v: %+v", got, id, want)
		}
	})
}

// TestCreateFnError: a transaction that creates a record and then fails
// sends nothing: no client and no fresh snapshot ever sees the record.
func TestCreateFnError(t *testing.T) {
	e := startServer(t, false, server.Config{})
	_, a := e.open("bank")
	_, b := e.open("bank")
	base := a.Version() // the server's epoch change
	ctx := testCtx(t)
	boom := errors.New("boom")
	var id wire.ObjectID
	err := a.Atomically(ctx, func(tx *stm.Tx) error {
		o := a.Create(tx, account)
		id = stm.IDOf(o)
		balanceF.Of(o).Set(tx, 10)
		hitsF.Of(o).Add(tx, 1)
		return boom
	})
	if err != boom {
		t.Fatalf("Atomically: %v, want fn's error untouched", err)
	}
	// A later commit orders after anything the failed one could have sent.
	if err := a.Atomically(ctx, func(tx *stm.Tx) error {
		o := a.Create(tx, account)
		nameF.Of(o).Set(tx, "later")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if v := a.Version(); v != base+1 {
		t.Fatalf("share version %d after one commit, want %d", v, base+1)
	}
	if err := b.WaitVersion(ctx, base+1); err != nil {
		t.Fatal(err)
	}
	_, fresh := e.open("bank")
	for name, s := range map[string]*client.Share{"creator": a, "other": b, "fresh": fresh} {
		if _, ok := s.Object(id); ok {
			t.Errorf("%s has the record of the failed transaction", name)
		}
		if recs := s.Records(); len(recs) != 1 || nameF.Of(recs[0]).Get(stm.Auto) != "later" {
			t.Errorf("%s has records %v, want only the later one", name, recs)
		}
	}
}

// TestCreateAndWrite: one transaction creates a record and moves money to
// it from an existing one; both changes arrive together.
func TestCreateAndWrite(t *testing.T) {
	e := startServer(t, false, server.Config{})
	e.raw("bank", createAccount(1, 100)...)
	_, a := e.open("bank")
	_, b := e.open("bank")
	ctx := testCtx(t)
	src := record(t, a, 1)
	var id wire.ObjectID
	if err := a.Atomically(ctx, func(tx *stm.Tx) error {
		o := a.Create(tx, account)
		id = stm.IDOf(o)
		balanceF.Of(src).Set(tx, balanceF.Of(src).Get(tx)-30)
		balanceF.Of(o).Set(tx, balanceF.Of(o).Get(tx)+30)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitVersion(ctx, a.Version()); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*client.Share{"creator": a, "other": b} {
		_, got := snapshot(t, s)
		if got[oid(3)].Balance != 70 || got[id].Balance != 30 || len(got) != 2 {
			t.Errorf("%s sees %+v, want account 1 at 70 and %v at 30", name, got, id)
		}
	}
}

// TestRemove: removing a record removes it, and its collections, from
// every replica and from the server.
func TestRemove(t *testing.T) {
	e := startServer(t, false, server.Config{})
	_, a := e.open("bank")
	_, b := e.open("bank")
	ctx := testCtx(t)
	var o *stm.Object
	if err := a.Atomically(ctx, func(tx *stm.Tx) error {
		o = a.Create(tx, account)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitVersion(ctx, a.Version()); err != nil {
		t.Fatal(err)
	}
	x, _ := b.Object(stm.IDOf(o))
	if err := b.Atomically(ctx, func(tx *stm.Tx) error {
		b.Remove(tx, x.(*stm.Object))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitVersion(ctx, b.Version()); err != nil {
		t.Fatal(err)
	}
	_, fresh := e.open("bank")
	for name, s := range map[string]*client.Share{"creator": a, "remover": b, "fresh": fresh} {
		if _, ok := s.Object(stm.IDOf(o)); ok {
			t.Errorf("%s still has the record", name)
		}
		if _, ok := s.Object(stm.IDOf(hitsF.Of(o))); ok {
			t.Errorf("%s still has the record's counter", name)
		}
	}
	err := a.Atomically(ctx, func(tx *stm.Tx) error {
		hitsF.Of(o).Add(tx, 1)
		return nil
	})
	if !errors.Is(err, client.ErrNotInShare) {
		t.Fatalf("write to a removed record: %v, want ErrNotInShare", err)
	}
}

// TestCreateMisuse: a class not given to Open, and a Remove of nil, are
// refused before anything is sent; Open refuses a nil class; Create of a
// nil class, or outside the share's Atomically, panics, saying so.
func TestCreateMisuse(t *testing.T) {
	e := startServer(t, false, server.Config{})
	_, a := e.open("bank")
	base := a.Version() // the server's epoch change
	other := stm.NewClass("Other", 99, stm.NewVarField[int64](1, "n"))
	err := a.Atomically(testCtx(t), func(tx *stm.Tx) error {
		a.Create(tx, other)
		return nil
	})
	if !errors.Is(err, client.ErrUnknownClass) {
		t.Fatalf("Create of an unknown class: %v, want ErrUnknownClass", err)
	}
	err = a.Atomically(testCtx(t), func(tx *stm.Tx) error {
		a.Remove(tx, nil)
		return nil
	})
	if !errors.Is(err, client.ErrNotInShare) {
		t.Fatalf("Remove of nil: %v, want ErrNotInShare", err)
	}
	if v := a.Version(); v != base {
		t.Fatalf("share version %d, want %d: nothing sent", v, base)
	}
	if _, err := e.client().Open(testCtx(t), "bank", account, nil); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Fatalf("Open with a nil class: %v, want an error saying so", err)
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "nil class") {
				t.Fatalf("Create of a nil class: recovered %v, want a panic saying so", r)
			}
		}()
		_ = a.Atomically(testCtx(t), func(tx *stm.Tx) error {
			a.Create(tx, nil)
			return nil
		})
	}()
	defer func() {
		if recover() == nil {
			t.Fatal("Create in the workspace's own transaction did not panic")
		}
	}()
	_ = a.Workspace().Atomically(testCtx(t), func(tx *stm.Tx) error {
		a.Create(tx, account)
		return nil
	})
}
