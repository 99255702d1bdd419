// Package sim is Weft's seeded simulation (issue #6; plan and status in
// docs/simulation.md): the real server and clients run inside a
// testing/synctest bubble over the in-memory network, and the simulator,
// driven by a seed, chooses every step: which connection end gets its
// next message (one message per step), which client runs a transaction,
// which connection is cut, when fake time passes. Between steps it waits
// until every goroutine of the bubble is idle. Each run's history (reads
// with the values seen, register writes and list appends of unique
// values, verdicts) is checked by package check.
//
// The same seed replays the identical run: each step's message is handled
// before the next step, and the trace hash of the steps is the same
// (TestSimReplay). Injected bugs (-sim.inject) show the checker at work:
// skip-read-validation (the server acknowledges without validating reads),
// no-deps (a commit that read an aborted speculative write may commit) and
// drop-broadcast (the server drops one Update) are each caught at the
// first seed (TestSimCatchesInjected). Not yet: store crashes in the
// simulation, and the injected bug "acknowledge before the sync" (the
// crash test catches it, see e2e).
//
// Run it with go test (synctest works in tests only):
//
//	go test ./sim -run TestSim -sim.seeds 200 -sim.txns 1000 -v   # last line: "N seeds, T transactions, A anomalies"
//	go test ./sim -run TestSim -sim.seed 17 -v                     # one seed
package sim
