// Package storetest is the conformance suite for server.Store: every
// implementation runs Run in its own tests, so that the server can rely on
// the contract documented on server.Store whatever store it is given.
//
// The suite checks, each case on a fresh, empty store: Load of an empty
// store; changes durable and in order across a close and a reopen; many
// shares, loaded in name order; concurrent Appends from many goroutines in
// the server's pattern (Append under the share's lock, wait outside it);
// checkpoints (later changes kept, covered ones dropped, a newer checkpoint
// replacing an older one, a checkpoint with no changes after it); values of
// every wire kind and objects of MB size round-tripping exactly; errors from
// Load's callback returned as they are; every method failing after Close;
// and, when the store can simulate one, power loss: every change whose wait
// returned nil survives, and what survives is a prefix of the Appends in
// the order they were made, across shares, with no gap.
package storetest
