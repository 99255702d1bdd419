// Social is a tiny social network on a Weft workspace: users with friends (a
// set of references, with cycles), a post counter, automatic setters, and an
// observer. Its classes are generated from social.weft by weft gen:
//
//	go generate ./examples/social
//	go run ./examples/social
package main

//go:generate go run github.com/weft-stm/weft/cmd/weft gen -package main -check-against testdata/v1.weft -o social.weft.go social.weft

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"time"

	"github.com/weft-stm/weft/stm"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer) error {
	ws := stm.NewWorkspace()
	defer ws.Close()

	// Automatic setters: outside a transaction, pass stm.Auto and each call
	// commits as a transaction of its own.
	alice, bob, carol := NewUser(ws), NewUser(ws), NewUser(ws)
	alice.SetName(stm.Auto, "alice")
	bob.SetName(stm.Auto, "bob")
	carol.SetName(stm.Auto, "carol")
	alice.Emails().Append(stm.Auto, "alice@example.com")

	// An observer of one field: called after each commit that changes it.
	changes := make(chan stm.Change, 8)
	sub := alice.ObserveFriends(func(c stm.Change) { changes <- c })
	defer sub.Close()

	// One transaction changes several objects atomically; friendships form
	// a cycle (alice -> bob -> alice).
	err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		alice.Friends().Add(tx, bob)
		alice.Friends().Add(tx, carol)
		bob.Friends().Add(tx, alice)
		return nil
	})
	if err != nil {
		return err
	}
	select {
	case c := <-changes:
		fmt.Fprintf(out, "observer: alice's friends changed (%d keys)\n", len(c.Keys))
	case <-time.After(5 * time.Second):
		return errors.New("observer not called")
	}

	// A post refers to its author; the author's counter counts posts. The
	// counter's Add never conflicts with other writers.
	err = ws.Atomically(ctx, func(tx *stm.Tx) error {
		post := NewPost(ws)
		post.SetAuthor(tx, alice)
		post.SetText(tx, "hello, weft")
		post.SetCreatedUnix(tx, 1700000000)
		post.Likes().AddFast(tx, bob)
		alice.Posts().Add(tx, 1)
		return nil
	})
	if err != nil {
		return err
	}
	alice.Posts().Add(stm.Auto, 1) // a second post, counted automatically

	return ws.View(ctx, func(tx *stm.Tx) error {
		for _, u := range []User{alice, bob, carol} {
			var friends []string
			for f := range u.Friends().All(tx) {
				friends = append(friends, f.Name(tx))
			}
			slices.Sort(friends)
			fmt.Fprintf(out, "%s: %d posts, friends %v\n", u.Name(tx), u.Posts().Get(tx), friends)
		}
		// Follow references both ways round the cycle.
		for f := range alice.Friends().All(tx) {
			if f.Friends().Contains(tx, alice) {
				fmt.Fprintf(out, "%s and %s are friends of each other\n", alice.Name(tx), f.Name(tx))
			}
		}
		return nil
	})
}
