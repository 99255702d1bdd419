package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// TestPermissionsAcrossProcesses: the weft binary, given tokens and
// per-share permissions in a -config file, enforces them on open, commit
// and broadcast: the feed's writer commits; a reader opens it, receives
// the writer's updates, and has its own write aborted as forbidden; a
// principal without access cannot open it; an unknown token cannot
// connect.
func TestPermissionsAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the weft binary and starts a process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	conf := filepath.Join(t.TempDir(), "weft.json")
	if err := os.WriteFile(conf, []byte(`{
	  "tokens": {"feeder-token": "feeder", "reader-token": "reader", "outsider-token": "outsider"},
	  "permissions": {"quotes": {"feeder": "write", "reader": "read"}},
	  "default_access": "none"
	}`), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := startWeft(ctx, t, "-config", conf)
	connect := func(tok string, replica uint64) (*client.Client, error) {
		return client.Dial(ctx, transport.TCPDialer(nil, wire.Limits{}), addr,
			client.Options{Replica: replica, Token: tok, MaxBackoff: 50 * time.Millisecond})
	}
	open := func(tok string, replica uint64) *client.Share {
		t.Helper()
		c, err := connect(tok, replica)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s, err := c.Open(ctx, "quotes", account)
		if err != nil {
			t.Fatalf("%s opening the feed: %v", tok, err)
		}
		return s
	}

	feed := open("feeder-token", 1)
	var quote *stm.Object
	if err := feed.Atomically(ctx, func(tx *stm.Tx) error {
		quote = feed.Create(tx, account)
		balance.Of(quote).Set(tx, 100)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	reader := open("reader-token", 2)
	if err := reader.WaitVersion(ctx, feed.Version()); err != nil {
		t.Fatal(err)
	}
	seen := reader.Records()
	if len(seen) != 1 {
		t.Fatalf("the reader holds %d records, want 1", len(seen))
	}
	err := reader.Atomically(ctx, func(tx *stm.Tx) error { balance.Of(seen[0]).Set(tx, 0); return nil })
	var ae *client.AbortError
	if !errors.As(err, &ae) || ae.Code != wire.CodeForbidden {
		t.Fatalf("the reader's write: %v, want aborted as forbidden", err)
	}
	if err := feed.Atomically(ctx, func(tx *stm.Tx) error { balance.Of(quote).Set(tx, 101); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := reader.WaitVersion(ctx, feed.Version()); err != nil {
		t.Fatal(err)
	}
	var got int64
	reader.View(ctx, func(tx *stm.Tx) error { got = balance.Of(seen[0]).Get(tx); return nil })
	if got != 101 {
		t.Fatalf("the reader sees %d, want the feeder's 101", got)
	}

	outsider, err := connect("outsider-token", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer outsider.Close()
	var sc *client.ShareClosedError
	if _, err := outsider.Open(ctx, "quotes", account); !errors.As(err, &sc) || sc.Code != wire.CodeForbidden {
		t.Fatalf("the outsider opening the feed: %v, want refused as forbidden", err)
	}
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	defer dcancel()
	if c, err := client.Dial(dctx, transport.TCPDialer(nil, wire.Limits{}), addr, client.Options{Replica: 4, Token: "wrong"}); err == nil {
		c.Close()
		t.Fatal("an unknown token connected")
	}
}
