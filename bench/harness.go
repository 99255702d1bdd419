package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A Suite is a named list of cases: `go run . NAME` runs one. Each suite
// lives in its own file (suite_NAME.go) and is listed in suites().
type Suite struct {
	Name string
	Doc  string
	// Reference is the system every other row of a case is compared with
	// in the ratio column.
	Reference string
	Cases     []Case
}

// A Case is one workload, measured once per system (a Row).
type Case struct {
	Name string
	Doc  string
	// Unit of the throughput value, e.g. "commits/s".
	Unit string
	// WorkPerOp converts ops (one call of a worker) into the unit's work:
	// 1000 for a transaction that writes 1000 elements and a unit of
	// "element writes/s". Zero means 1.
	WorkPerOp float64
	// AllocUnit, when set, adds a second row per system: heap allocations
	// per op in this unit (e.g. "allocs/commit"), lower is better.
	AllocUnit string
	// SecondsPerOp makes the value the time of one unit of work (elapsed
	// seconds / (ops × WorkPerOp)) instead of a rate, lower is better:
	// for ops long enough to be timed one by one, such as a restart.
	// Unit should then be "s".
	SecondsPerOp bool
	Rows         []Row
}

// ErrSkip, returned (wrapped) by a Row's Setup, says the row cannot run
// here, e.g. because a server binary is missing: the row is reported as
// "skipped: reason" in the table, left out of the JSON, and is not a
// failure. Use skipRow to build one.
var ErrSkip = errors.New("skipped")

// skipRow returns an error wrapping ErrSkip whose text is
// "skipped: reason".
func skipRow(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSkip}, args...)...)
}

// A Row is one system's implementation of a case.
type Row struct {
	System string
	// Note says how the system does the case when that is not obvious
	// (e.g. which data structure stands in for a list); shown under the
	// table.
	Note string
	// Setup builds fresh state for one repetition. It runs outside the
	// timed region.
	Setup func() (*Instance, error)
}

// An Instance is a case's prepared state for one repetition.
type Instance struct {
	// Workers run concurrently, one goroutine each, for the measured
	// duration. Each call does one op (e.g. one committed transaction) and
	// must not allocate beyond what the measured system allocates: build
	// closures in Setup, not per call.
	Workers []func() error
	// Check, when set, verifies the final state from the number of ops
	// each worker completed (e.g. that no increment was lost).
	Check func(ops []uint64) error
	// Close, when set, releases the instance.
	Close func() error
	// Elapsed, when set, is the time the workers spent in the part of
	// their ops the case measures; it replaces the wall-clock time of the
	// run. For ops that must also undo their work before the next one
	// (e.g. stop the server they started) without billing that to the
	// op. Called after the workers stopped.
	Elapsed func() time.Duration
}

// sample is what one timed run of an Instance measured.
type sample struct {
	ops     []uint64 // per worker
	elapsed time.Duration
	mallocs uint64
}

func (s sample) total() uint64 {
	var n uint64
	for _, o := range s.ops {
		n += o
	}
	return n
}

// measure runs inst's workers for d and returns what they did. A GC runs
// just before the clock starts, so garbage from earlier runs is not billed
// to this one. With prof set, a CPU profile of the measured window alone
// (not the setup, nor the check) goes to that file.
func measure(inst *Instance, d time.Duration, prof string) (sample, error) {
	if len(inst.Workers) == 0 {
		return sample{}, errors.New("instance has no workers")
	}
	var (
		stop  atomic.Bool
		begin = make(chan struct{})
		ready sync.WaitGroup
		done  sync.WaitGroup
		ops   = make([]uint64, len(inst.Workers))
		errs  = make([]error, len(inst.Workers))
	)
	for i, w := range inst.Workers {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			defer func() {
				if r := recover(); r != nil {
					errs[i] = fmt.Errorf("worker %d panicked: %v", i, r)
					stop.Store(true)
				}
			}()
			ready.Done()
			<-begin
			// At least one op each, even if the scheduler starts this
			// goroutine late on a loaded machine.
			var n uint64
			for {
				if err := w(); err != nil {
					errs[i] = fmt.Errorf("worker %d, op %d: %w", i, n, err)
					stop.Store(true)
					break
				}
				n++
				if stop.Load() {
					break
				}
			}
			ops[i] = n
		}()
	}
	ready.Wait()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	stopProfile, perr := startProfile(prof)
	start := time.Now()
	close(begin)
	time.Sleep(d)
	stop.Store(true)
	done.Wait()
	elapsed := time.Since(start)
	perr = errors.Join(perr, stopProfile())
	runtime.ReadMemStats(&after)

	if err := errors.Join(errors.Join(errs...), perr); err != nil {
		return sample{}, err
	}
	if inst.Elapsed != nil {
		elapsed = inst.Elapsed()
	}
	s := sample{ops: ops, elapsed: elapsed, mallocs: after.Mallocs - before.Mallocs}
	if s.total() == 0 {
		return sample{}, fmt.Errorf("no op completed in %v", d)
	}
	if inst.Check != nil {
		if err := inst.Check(ops); err != nil {
			return sample{}, fmt.Errorf("check after %d ops: %w", s.total(), err)
		}
	}
	return s, nil
}

// startProfile starts a CPU profile to the file path, if any, and returns
// what stops it.
func startProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return func() error { return nil }, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() error { return nil }, fmt.Errorf("cpu profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// runOnce sets up a fresh instance, measures it for d (profiling that
// window to prof, if set) and closes it.
func runOnce(row Row, d time.Duration, prof string) (s sample, err error) {
	inst, err := row.Setup()
	if errors.Is(err, ErrSkip) {
		return sample{}, err
	}
	if err != nil {
		return sample{}, fmt.Errorf("setup: %w", err)
	}
	defer func() {
		if inst.Close != nil {
			if cerr := inst.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("close: %w", cerr)
			}
		}
	}()
	return measure(inst, d, prof)
}

// A Result is one line of the report: a metric of one system on one case,
// over all repetitions.
type Result struct {
	Suite  string
	Case   string
	System string
	Unit   string
	Note   string
	// LowerIsBetter is true for costs (allocations, seconds per op), false
	// for throughput.
	LowerIsBetter bool
	Values        []float64 // one per repetition
	Err           error
	// Skipped, when set, is why the row did not run ("skipped: ..."):
	// its Setup returned ErrSkip. Not a failure.
	Skipped string
}

func (r *Result) Median() float64 { return median(r.Values) }
func (r *Result) Min() float64    { return slices.Min(r.Values) }
func (r *Result) Max() float64    { return slices.Max(r.Values) }

// Noise is the spread (max-min) relative to the median.
func (r *Result) Noise() float64 {
	m := r.Median()
	if m == 0 {
		return 0
	}
	return (r.Max() - r.Min()) / m
}

// Advantage says how many times better ref is than r: ref/r for
// throughput, r/ref for costs. It is NaN when undefined (0/0) and +Inf
// when ref is free and r is not.
func (r *Result) Advantage(ref *Result) float64 {
	a, b := ref.Median(), r.Median()
	if r.LowerIsBetter {
		a, b = b, a
	}
	switch {
	case a == 0 && b == 0:
		return 1
	case b == 0:
		return math.Inf(1)
	}
	return a / b
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// A runner measures cases, printing progress to its progress writer.
type runner struct {
	duration time.Duration
	warmup   time.Duration
	count    int
	progress io.Writer
	// profile, when set, is the prefix of one CPU profile file per timed
	// repetition: profile.case.system.rep.
	profile string
}

// runCase measures every row of c. Repetitions are interleaved (rep 1 of
// every system, then rep 2, ...) so that slow drift of the machine spreads
// over all systems instead of favouring whichever ran first. Each row gets
// one untimed warm-up run before its first repetition.
func (rn *runner) runCase(s *Suite, c *Case) []*Result {
	workPerOp := c.WorkPerOp
	if workPerOp == 0 {
		workPerOp = 1
	}
	type rowResults struct {
		thru, alloc *Result
	}
	res := make([]rowResults, len(c.Rows))
	for i, row := range c.Rows {
		res[i].thru = &Result{Suite: s.Name, Case: c.Name, System: row.System, Unit: c.Unit, Note: row.Note,
			LowerIsBetter: c.SecondsPerOp}
		if c.AllocUnit != "" {
			res[i].alloc = &Result{Suite: s.Name, Case: c.Name, System: row.System, Unit: c.AllocUnit, LowerIsBetter: true}
		}
	}
	fail := func(i int, err error) {
		if errors.Is(err, ErrSkip) {
			fmt.Fprintf(rn.progress, "%s/%s %s %v\n", s.Name, c.Name, c.Rows[i].System, err)
			for _, r := range []*Result{res[i].thru, res[i].alloc} {
				if r != nil {
					r.Skipped, r.Values = err.Error(), nil
				}
			}
			return
		}
		err = fmt.Errorf("%s/%s %s: %w", s.Name, c.Name, c.Rows[i].System, err)
		fmt.Fprintf(rn.progress, "%v\n", err)
		res[i].thru.Err = err
		if res[i].alloc != nil {
			res[i].alloc.Err = err
		}
	}
	if rn.warmup > 0 {
		for i, row := range c.Rows {
			fmt.Fprintf(rn.progress, "%s/%s %s warm-up\n", s.Name, c.Name, row.System)
			if res[i].thru.Skipped != "" {
				continue
			}
			if _, err := runOnce(row, rn.warmup, ""); err != nil {
				fail(i, err)
			}
		}
	}
	for rep := 1; rep <= rn.count; rep++ {
		for i, row := range c.Rows {
			if res[i].thru.Err != nil || res[i].thru.Skipped != "" {
				continue
			}
			prof := ""
			if rn.profile != "" {
				prof = fmt.Sprintf("%s.%s.%s.%d", rn.profile, c.Name, strings.ReplaceAll(row.System, "/", "_"), rep)
			}
			smp, err := runOnce(row, rn.duration, prof)
			if err != nil {
				fail(i, err)
				continue
			}
			ops := float64(smp.total())
			v := ops * workPerOp / smp.elapsed.Seconds()
			if c.SecondsPerOp {
				v = smp.elapsed.Seconds() / (ops * workPerOp)
			}
			res[i].thru.Values = append(res[i].thru.Values, v)
			line := fmt.Sprintf("%s/%s %s %d/%d %s %s", s.Name, c.Name, row.System, rep, rn.count, formatValue(v), c.Unit)
			if a := res[i].alloc; a != nil {
				av := float64(smp.mallocs) / ops
				a.Values = append(a.Values, av)
				line += fmt.Sprintf(", %s %s", formatValue(av), c.AllocUnit)
			}
			fmt.Fprintln(rn.progress, line)
		}
	}
	var out []*Result
	for _, r := range res {
		out = append(out, r.thru)
	}
	for _, r := range res {
		if r.alloc != nil {
			out = append(out, r.alloc)
		}
	}
	return out
}
