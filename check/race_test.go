//go:build race

package check

// raceEnabled lets the 200,000-transaction test skip under the race
// detector, which slows it tenfold and has no concurrency to check here.
const raceEnabled = true
