package main

import (
	"fmt"
	"runtime"
	"sync"

	astm "github.com/anacrolix/stm"
	lstm "github.com/lukechampine/stm"
)

// Systems compared by the stm suite.
const (
	sysWeft      = "weft"
	sysWeftVar   = "weft-var"
	sysLuke      = "lukechampine/stm"
	sysAnacrolix = "anacrolix/stm"
	sysMutex     = "mutex"
)

// arrayLen is the number of elements array-1000 writes per transaction.
const arrayLen = 1000

// rmwSpec describes a read-modify-write workload: Goroutines workers, each
// incrementing Vars variables per transaction. With Shared all workers
// increment the same variables (they conflict); otherwise each worker has
// its own.
type rmwSpec struct {
	Goroutines int
	Vars       int
	Shared     bool
}

// spacing is how many unused variables are allocated between two workers'
// sets, so that two goroutines' variables do not share a cache line: false
// sharing would bill a system for the harness's memory layout.
const spacing = 8

// newVars allocates the variables of every group, spaced apart. It
// returns the groups and the spacers, which the caller keeps alive until
// the instance closes (freed, their slots could be reused by the system
// being measured).
func newVars[V any](s rmwSpec, newVar func() V) (groups [][]V, spacers []V) {
	groups = make([][]V, s.groups())
	for g := range groups {
		for range s.Vars {
			groups[g] = append(groups[g], newVar())
		}
		for range spacing {
			spacers = append(spacers, newVar())
		}
	}
	return groups, spacers
}

// groups returns how many independent sets of variables the spec needs.
func (s rmwSpec) groups() int {
	if s.Shared {
		return 1
	}
	return s.Goroutines
}

// group returns the index of the variable set worker w increments.
func (s rmwSpec) group(w int) int {
	if s.Shared {
		return 0
	}
	return w
}

// checkRMW verifies that every variable of every group holds the number of
// increments done to it: no update lost, none doubled. get(g, i) returns
// variable i of group g.
func (s rmwSpec) check(ops []uint64, get func(g, i int) int) error {
	want := make([]uint64, s.groups())
	for w, n := range ops {
		want[s.group(w)] += n
	}
	for g := range want {
		for i := range s.Vars {
			if got := get(g, i); uint64(got) != want[g] {
				return fmt.Errorf("group %d var %d = %d, want %d", g, i, got, want[g])
			}
		}
	}
	return nil
}

func stmSuite() *Suite {
	rmwRows := func(spec rmwSpec) []Row {
		return []Row{
			{System: sysWeft, Setup: func() (*Instance, error) { return weftRMW(spec) }},
			{System: sysLuke, Setup: func() (*Instance, error) { return lukeRMW(spec) }},
			{System: sysAnacrolix, Setup: func() (*Instance, error) { return anacrolixRMW(spec) }},
			{System: sysMutex, Setup: func() (*Instance, error) { return mutexRMW(spec) }},
		}
	}
	return &Suite{
		Name:      "stm",
		Doc:       "embedded STM: transactions on in-memory variables, one process",
		Reference: sysWeft,
		Cases: []Case{
			{
				Name:      "1var-rmw",
				Doc:       "one goroutine, one transaction per increment of one variable",
				Unit:      "commits/s",
				AllocUnit: "allocs/commit",
				Rows:      rmwRows(rmwSpec{Goroutines: 1, Vars: 1}),
			},
			{
				Name: "1var-rmw-2g",
				Doc:  "two goroutines, each incrementing its own variable; total commits",
				Unit: "commits/s",
				Rows: rmwRows(rmwSpec{Goroutines: 2, Vars: 1}),
			},
			{
				Name: "10var-rmw",
				Doc:  "one goroutine, each transaction increments 10 variables",
				Unit: "commits/s",
				Rows: rmwRows(rmwSpec{Goroutines: 1, Vars: 10}),
			},
			{
				Name: "10var-rmw-2g",
				Doc:  "two goroutines, each incrementing its own 10 variables per transaction; total commits",
				Unit: "commits/s",
				Rows: rmwRows(rmwSpec{Goroutines: 2, Vars: 10}),
			},
			{
				Name: "contended",
				Doc:  "two goroutines incrementing one shared variable",
				Unit: "commits/s",
				Rows: rmwRows(rmwSpec{Goroutines: 2, Vars: 1, Shared: true}),
			},
			{
				Name:      "array-1000",
				Doc:       "one goroutine, each transaction writes all 1000 elements of a list",
				Unit:      "element writes/s",
				WorkPerOp: arrayLen,
				Rows: []Row{
					{System: sysWeft, Note: "stm.List[int] of 1000 elements, List.Set per element",
						Setup: func() (*Instance, error) { return weftArray(arrayLen) }},
					{System: sysLuke, Note: "1000 Vars, one per element (no list type); value boxed once per tx",
						Setup: func() (*Instance, error) { return lukeArray(arrayLen) }},
					{System: sysAnacrolix, Note: "1000 Vars, one per element (no list type); value boxed once per tx",
						Setup: func() (*Instance, error) { return anacrolixArray(arrayLen) }},
					{System: sysMutex, Note: "one sync.Mutex guarding a []int",
						Setup: func() (*Instance, error) { return mutexArray(arrayLen) }},
				},
			},
			{
				Name: "object-field-rmw",
				Doc:  "one goroutine, each transaction increments one field of a generated object; beside the same on a bare Var",
				Unit: "commits/s",
				Rows: []Row{
					{System: sysWeft, Note: "generated Account (account.weft): SetBalance(tx, Balance(tx)+1)",
						Setup: weftObjectField},
					{System: sysWeftVar, Note: "stm.Var[int64]: Set(tx, Get(tx)+1), the floor the field path is held to",
						Setup: weftBareVar},
				},
			},
		},
	}
}

// lukechampine/stm: untyped Vars (interface{} values), one global commit
// lock. Storing an int above 255 in an interface allocates, so each
// increment costs the peer one allocation that weft's typed Var[int] need
// not; that is the peer's API, not the harness.

func lukeRMW(spec rmwSpec) (*Instance, error) {
	vars, spacers := newVars(spec, func() *lstm.Var { return lstm.NewVar(0) })
	inst := &Instance{
		Check: func(ops []uint64) error {
			return spec.check(ops, func(g, i int) int { return lstm.AtomicGet(vars[g][i]).(int) })
		},
		Close: func() error { runtime.KeepAlive(spacers); return nil },
	}
	for w := range spec.Goroutines {
		vs := vars[spec.group(w)]
		fn := func(tx *lstm.Tx) {
			for _, v := range vs {
				tx.Set(v, tx.Get(v).(int)+1)
			}
		}
		inst.Workers = append(inst.Workers, func() error { lstm.Atomically(fn); return nil })
	}
	return inst, nil
}

func lukeArray(n int) (*Instance, error) {
	vars := make([]*lstm.Var, n)
	for i := range vars {
		vars[i] = lstm.NewVar(0)
	}
	var (
		round int
		boxed any
	)
	fn := func(tx *lstm.Tx) {
		for _, v := range vars {
			tx.Set(v, boxed)
		}
	}
	return &Instance{
		Workers: []func() error{func() error {
			round++
			boxed = round // one allocation per tx, shared by all elements
			lstm.Atomically(fn)
			return nil
		}},
		Check: func(ops []uint64) error {
			return checkArray(ops, n, round, func(i int) int { return lstm.AtomicGet(vars[i]).(int) })
		},
	}, nil
}

// anacrolix/stm (a fork of lukechampine/stm): untyped Vars, per-Var locks
// taken in address order at commit, pooled Tx. Same boxing cost as above.

func anacrolixRMW(spec rmwSpec) (*Instance, error) {
	vars, spacers := newVars(spec, func() *astm.Var { return astm.NewVar(0) })
	inst := &Instance{
		Check: func(ops []uint64) error {
			return spec.check(ops, func(g, i int) int { return astm.AtomicGet(vars[g][i]).(int) })
		},
		Close: func() error { runtime.KeepAlive(spacers); return nil },
	}
	for w := range spec.Goroutines {
		vs := vars[spec.group(w)]
		op := astm.Operation(func(tx *astm.Tx) any {
			for _, v := range vs {
				tx.Set(v, tx.Get(v).(int)+1)
			}
			return nil
		})
		inst.Workers = append(inst.Workers, func() error { astm.Atomically(op); return nil })
	}
	return inst, nil
}

func anacrolixArray(n int) (*Instance, error) {
	vars := make([]*astm.Var, n)
	for i := range vars {
		vars[i] = astm.NewVar(0)
	}
	var (
		round int
		boxed any
	)
	op := astm.Operation(func(tx *astm.Tx) any {
		for _, v := range vars {
			tx.Set(v, boxed)
		}
		return nil
	})
	return &Instance{
		Workers: []func() error{func() error {
			round++
			boxed = round
			astm.Atomically(op)
			return nil
		}},
		Check: func(ops []uint64) error {
			return checkArray(ops, n, round, func(i int) int { return astm.AtomicGet(vars[i]).(int) })
		},
	}, nil
}

// mutex: the floor, a sync.Mutex guarding plain ints. Each group, and its
// values, sit on their own cache lines, so the two goroutines of
// 1var-rmw-2g do not slow each other by false sharing.

type mutexGroup struct {
	_    [cacheLine]byte
	mu   sync.Mutex
	vals []int
	_    [cacheLine]byte
}

const cacheLine = 64

func newMutexGroup(n int) *mutexGroup {
	// The spare capacity keeps another group's values off these lines.
	return &mutexGroup{vals: make([]int, n, n+2*cacheLine/8)}
}

func mutexRMW(spec rmwSpec) (*Instance, error) {
	groups := make([]*mutexGroup, spec.groups())
	for g := range groups {
		groups[g] = newMutexGroup(spec.Vars)
	}
	inst := &Instance{
		Check: func(ops []uint64) error {
			return spec.check(ops, func(g, i int) int {
				groups[g].mu.Lock()
				defer groups[g].mu.Unlock()
				return groups[g].vals[i]
			})
		},
	}
	for w := range spec.Goroutines {
		grp := groups[spec.group(w)]
		inst.Workers = append(inst.Workers, func() error {
			grp.mu.Lock()
			for i := range grp.vals {
				grp.vals[i]++
			}
			grp.mu.Unlock()
			return nil
		})
	}
	return inst, nil
}

func mutexArray(n int) (*Instance, error) {
	grp := newMutexGroup(n)
	round := 0
	return &Instance{
		Workers: []func() error{func() error {
			round++
			grp.mu.Lock()
			for i := range grp.vals {
				grp.vals[i] = round
			}
			grp.mu.Unlock()
			return nil
		}},
		Check: func(ops []uint64) error {
			grp.mu.Lock()
			defer grp.mu.Unlock()
			return checkArray(ops, n, round, func(i int) int { return grp.vals[i] })
		},
	}, nil
}

// checkArray verifies that the single worker's ops match its rounds and
// that all n elements hold the last round written.
func checkArray(ops []uint64, n, round int, get func(i int) int) error {
	if len(ops) != 1 || ops[0] != uint64(round) {
		return fmt.Errorf("%v ops counted for %d rounds", ops, round)
	}
	for i := range n {
		if got := get(i); got != round {
			return fmt.Errorf("element %d = %d, want %d", i, got, round)
		}
	}
	return nil
}
