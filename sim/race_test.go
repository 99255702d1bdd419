//go:build race

package sim

// raceEnabled: under the race detector TestSim runs fewer seeds by
// default (make test also runs the default 200 without it).
const raceEnabled = true
