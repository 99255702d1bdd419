// Package sim is Weft's seeded simulation (issue #6; plan and status in
// docs/simulation.md): the real server and clients run inside a
// testing/synctest bubble over the in-memory network, and the simulator,
// driven by a seed, chooses every step: which connection end gets its
// next message (one message per step), which client runs a transaction,
// which connection is cut, when the server's store syncs, when the
// server's machine loses power (what was not synced is lost, and a new
// server restores the rest), when a client goes offline (a partition) and
// comes back, when a client application is killed and starts again on
// its offline cache (what the cache had not synced is lost; the new life
// resends the unanswered commits and learns their verdicts through
// OnAcknowledge and OnAbort), when fake time passes. A client chains
// speculative commits up to 8 deep before it waits. Between steps it waits
// until every goroutine of the bubble is idle, so the same seed replays
// the identical run (TestSimReplay compares trace hashes). Each run's
// history (reads with the values seen, register writes and list appends
// of unique values, verdicts) is checked by package check; besides, the
// transactions move money between cells (every snapshot audited must show
// the same total), increment counters blindly (each must end at the
// increments acknowledged), add unique elements to sets with AddFast
// (every acknowledged one present, no aborted one), and create notes
// (records whose lists later transactions append to and read, while the
// creation may still be pending); a replica that fails counts as an
// anomaly.
//
// Injected bugs (-sim.inject) show the checker at work, each caught
// within a few seeds (TestSimCatchesInjected): skip-read-validation (the
// server acknowledges without validating reads), no-deps (a commit that
// read an aborted speculative write may commit), drop-broadcast (the
// server drops one Update), ack-before-sync (the server acknowledges
// before the store synced).
//
// Run it with go test (synctest works in tests only):
//
//	go test ./sim -run '^TestSim$' -sim.seeds 200 -sim.txns 1000 -v   # last line: "N seeds, T transactions, A anomalies"
//	go test ./sim -run '^TestSim$' -sim.seed 17 -v                     # one seed
package sim
