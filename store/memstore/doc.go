// Package memstore is a server.Store that keeps everything in memory: for
// tests, and for `weft serve` without -data, where nothing is meant to
// survive the process.
//
// Append's wait returns nil at once: the change is as durable as the store
// ever makes anything. Changes and objects are kept encoded, as the other
// stores keep them, so that what Load returns never aliases what the caller
// passed and a value the persistent stores could not keep fails here too.
//
// Reopen gives a new Store over the same data, as a restart of the server
// process over a persistent store would find it; the conformance suite uses
// it to close and reopen.
package memstore
