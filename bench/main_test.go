package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// smokeArgs run every case very briefly.
var smokeArgs = []string{"-duration", "3ms", "-count", "2", "-warmup", "1ms"}

// wantRows lists every (case, system, unit) the stm suite must report.
func wantRows(t *testing.T) map[[3]string]bool {
	t.Helper()
	want := map[[3]string]bool{}
	for _, s := range suites() {
		if s.Name != "stm" {
			continue
		}
		for _, c := range s.Cases {
			for _, r := range c.Rows {
				want[[3]string{c.Name, r.System, c.Unit}] = true
				if c.AllocUnit != "" {
					want[[3]string{c.Name, r.System, c.AllocUnit}] = true
				}
			}
		}
	}
	// Guard against the suite itself shrinking unnoticed.
	for _, c := range []string{"1var-rmw", "1var-rmw-2g", "10var-rmw", "contended", "array-1000"} {
		for _, sys := range []string{sysWeft, sysLuke, sysAnacrolix, sysMutex} {
			unit := "commits/s"
			if c == "array-1000" {
				unit = "element writes/s"
			}
			if !want[[3]string{c, sys, unit}] {
				t.Errorf("stm suite has no row %s %s %s", c, sys, unit)
			}
		}
	}
	for _, sys := range []string{sysWeft, sysLuke, sysAnacrolix, sysMutex} {
		if !want[[3]string{"1var-rmw", sys, "allocs/commit"}] {
			t.Errorf("stm suite has no allocs/commit row for %s", sys)
		}
	}
	return want
}

func TestSmokeJSON(t *testing.T) {
	want := wantRows(t)
	var stdout, stderr bytes.Buffer
	if code := run(append(slices.Clone(smokeArgs), "-json", "stm"), &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr.String())
	}
	got := map[[3]string]bool{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, `{"suite":"stm","case":"`) {
			t.Errorf("line does not start with suite then case: %s", line)
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		var row struct {
			Suite  *string
			Case   *string
			System *string
			Value  *float64
			Unit   *string
		}
		if err := dec.Decode(&row); err != nil {
			t.Errorf("line %q: %v", line, err)
			continue
		}
		if row.Suite == nil || row.Case == nil || row.System == nil || row.Value == nil || row.Unit == nil {
			t.Errorf("line %q misses a field", line)
			continue
		}
		key := [3]string{*row.Case, *row.System, *row.Unit}
		if got[key] {
			t.Errorf("duplicate row %v", key)
		}
		got[key] = true
		v := *row.Value
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0) || v < 0:
			t.Errorf("%v: value %v", key, v)
		case strings.HasSuffix(*row.Unit, "/s") && v <= 0:
			t.Errorf("%v: throughput %v, want > 0", key, v)
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("no JSON row for %v", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("unexpected JSON row %v", k)
		}
	}
	if !strings.Contains(stderr.String(), "stm/1var-rmw weft 2/2 ") {
		t.Errorf("stderr has no progress line for the last weft repetition:\n%s", stderr.String())
	}
}

func TestSmokeTable(t *testing.T) {
	want := wantRows(t)
	var stdout, stderr bytes.Buffer
	if code := run(append(slices.Clone(smokeArgs), "stm"), &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	if strings.Contains(out, "FAILED") {
		t.Errorf("table has a failed row:\n%s", out)
	}
	if strings.Contains(out, "stm/") && strings.Contains(out, " 1/2 ") {
		t.Errorf("progress leaked to stdout:\n%s", out)
	}
	// Rows carry the case name only on a case's first line; track it.
	rows := map[[3]string]bool{}
	refs, wantRefs := 0, 0
	var cases []string
	for _, c := range stmSuite().Cases {
		cases = append(cases, c.Name)
		wantRefs++
		if c.AllocUnit != "" {
			wantRefs++
		}
	}
	curCase := ""
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		for _, c := range cases {
			if len(f) > 0 && f[0] == c {
				curCase, f = c, f[1:]
			}
		}
		if len(f) < 3 || curCase == "" {
			continue
		}
		for k := range want {
			if k[0] == curCase && f[0] == k[1] && strings.Contains(line, "  "+k[2]+"  ") {
				rows[k] = true
				if f[len(f)-1] == "ref" {
					refs++
				}
			}
		}
	}
	for k := range want {
		if !rows[k] {
			t.Errorf("table has no row %v:\n%s", k, out)
		}
	}
	if refs != wantRefs { // one per throughput row and per allocs row
		t.Errorf("%d reference rows, want %d:\n%s", refs, wantRefs, out)
	}
}

func TestCaseFilter(t *testing.T) {
	all := []string{"1var-rmw", "1var-rmw-2g", "10var-rmw", "contended", "array-1000"}
	for _, tc := range []struct {
		spec string
		want []string
	}{
		{"", all},
		{"1var-rmw", []string{"1var-rmw"}},
		{"stm/1var-rmw", []string{"1var-rmw"}},
		{"1var-rmw,contended", []string{"1var-rmw", "contended"}},
		{"rmw", []string{"1var-rmw", "1var-rmw-2g", "10var-rmw"}},
		{"^stm/1", []string{"1var-rmw", "1var-rmw-2g", "10var-rmw"}},
		{"array-1000, stm/contended", []string{"contended", "array-1000"}},
		{"nothing-like-this", nil},
	} {
		match, err := newCaseFilter(tc.spec)
		if err != nil {
			t.Fatalf("%q: %v", tc.spec, err)
		}
		var got []string
		for _, c := range all {
			if match("stm", c) {
				got = append(got, c)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("-cases %q selects %v, want %v", tc.spec, got, tc.want)
		}
	}
	if _, err := newCaseFilter("(unclosed"); err == nil {
		t.Error("bad regexp accepted")
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"nosuch"},
		{"-cases", "nothing-like-this", "stm"},
		{"-count", "0", "stm"},
		{"-cases", "(", "stm"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit code %d, want 2", args, code)
		}
		if stdout.Len() != 0 {
			t.Errorf("%v: wrote to stdout: %s", args, stdout.String())
		}
	}
}

// TestRowsCount checks every row of the stm suite without the clock: run
// each worker k times, then Check must accept k ops per worker and reject
// k+1. This catches a row that does not do its increments or a check that
// cannot fail.
func TestRowsCount(t *testing.T) {
	const k = 7
	for _, c := range stmSuite().Cases {
		for _, row := range c.Rows {
			t.Run(c.Name+"/"+row.System, func(t *testing.T) {
				inst, err := row.Setup()
				if err != nil {
					t.Fatal(err)
				}
				if inst.Close != nil {
					defer func() {
						if err := inst.Close(); err != nil {
							t.Error(err)
						}
					}()
				}
				checkCountsExact(t, inst, k)
			})
		}
	}
}

// TestRunCaseFailures: a row whose check fails, a worker that errs and one
// that panics are reported as failed, while a good row still gets its
// values, and the table marks the failures.
func TestRunCaseFailures(t *testing.T) {
	good := func() (*Instance, error) {
		return &Instance{Workers: []func() error{func() error { return nil }}}, nil
	}
	s := &Suite{Name: "fake", Reference: "good", Cases: []Case{{
		Name: "c", Unit: "ops/s", AllocUnit: "allocs/op",
		Rows: []Row{
			{System: "good", Setup: good},
			{System: "lossy", Setup: func() (*Instance, error) {
				inst, _ := good()
				inst.Check = func([]uint64) error { return errors.New("lost an update") }
				return inst, nil
			}},
			{System: "erring", Setup: func() (*Instance, error) {
				return &Instance{Workers: []func() error{func() error { return errors.New("boom") }}}, nil
			}},
			{System: "panicking", Setup: func() (*Instance, error) {
				return &Instance{Workers: []func() error{func() error { panic("bang") }}}, nil
			}},
			{System: "nosetup", Setup: func() (*Instance, error) { return nil, errors.New("no") }},
		},
	}}}
	var progress bytes.Buffer
	rn := &runner{duration: time.Millisecond, count: 2, progress: &progress}
	res := rn.runCase(s, &s.Cases[0])
	if len(res) != 10 {
		t.Fatalf("%d results, want 10", len(res))
	}
	for _, r := range res {
		if ok := r.System == "good"; ok != (r.Err == nil) {
			t.Errorf("%s %s: err %v", r.System, r.Unit, r.Err)
		}
		if r.System == "good" && len(r.Values) != 2 {
			t.Errorf("good %s: %d values, want 2", r.Unit, len(r.Values))
		}
	}
	for _, msg := range []string{"lost an update", "boom", "bang", "setup: no"} {
		if !strings.Contains(progress.String(), msg) {
			t.Errorf("progress does not report %q:\n%s", msg, progress.String())
		}
	}
	var table bytes.Buffer
	if err := writeTable(&table, s, res, time.Millisecond, 2); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(table.String(), "FAILED"); n != 8 {
		t.Errorf("%d FAILED rows, want 8:\n%s", n, table.String())
	}
	var js bytes.Buffer
	if err := writeJSON(&js, res); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(js.String(), "\n"); n != 2 {
		t.Errorf("%d JSON rows, want 2 (failures left out):\n%s", n, js.String())
	}
}

// TestHarnessDoesNotAllocate: the measuring loop itself must add no
// allocation per op, or every allocs/commit row would be inflated.
func TestHarnessDoesNotAllocate(t *testing.T) {
	nop := func() error { return nil }
	s, err := measure(&Instance{Workers: []func() error{nop}}, 20*time.Millisecond, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.total() < 1000 {
		t.Fatalf("only %d ops", s.total())
	}
	if per := float64(s.mallocs) / float64(s.total()); per > 0.001 {
		t.Errorf("%d mallocs for %d no-op ops (%.4f per op)", s.mallocs, s.total(), per)
	}
}

func TestStats(t *testing.T) {
	r := &Result{Values: []float64{5, 1, 3, 10}}
	if got := r.Median(); got != 4 {
		t.Errorf("median %v, want 4", got)
	}
	if r.Min() != 1 || r.Max() != 10 {
		t.Errorf("min %v max %v", r.Min(), r.Max())
	}
	if got := r.Noise(); got != 9.0/4 {
		t.Errorf("noise %v, want 2.25", got)
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("odd median %v, want 2", got)
	}

	ref := &Result{Values: []float64{200}}
	if got := (&Result{Values: []float64{50}}).Advantage(ref); got != 4 {
		t.Errorf("throughput advantage %v, want 4", got)
	}
	costRef := &Result{Values: []float64{2}, LowerIsBetter: true}
	if got := (&Result{Values: []float64{6}, LowerIsBetter: true}).Advantage(costRef); got != 3 {
		t.Errorf("cost advantage %v, want 3", got)
	}
	zero := &Result{Values: []float64{0}, LowerIsBetter: true}
	if got := (&Result{Values: []float64{6}, LowerIsBetter: true}).Advantage(zero); !math.IsInf(got, 1) {
		t.Errorf("advantage of a free reference %v, want +Inf", got)
	}
	if got := zero.Advantage(zero); got != 1 {
		t.Errorf("0 vs 0 advantage %v, want 1", got)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0"},
		{3, "3.000"},
		{5.9994, "5.999"},
		{0.25, "0.250"},
		{1.1e-7, "0.000"},
		{42.5, "42.50"},
		{987.6, "987.6"},
		{1234, "1.234k"},
		{12_345_678, "12.35M"},
		{1.5e9, "1.500G"},
	} {
		if got := formatValue(tc.v); got != tc.want {
			t.Errorf("formatValue(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
	for _, tc := range []struct {
		x    float64
		want string
	}{
		{1, "1.00"}, {12.34, "12.3"}, {250.4, "250"}, {math.Inf(1), "∞"}, {math.NaN(), "–"},
	} {
		if got := formatRatio(tc.x); got != tc.want {
			t.Errorf("formatRatio(%v) = %q, want %q", tc.x, got, tc.want)
		}
	}
}

// checkCountsExact runs each of inst's workers k times, then requires its
// Check to accept those counts and to reject one op more.
func checkCountsExact(t *testing.T, inst *Instance, k uint64) {
	t.Helper()
	ops := make([]uint64, len(inst.Workers))
	for i, w := range inst.Workers {
		for range k {
			if err := w(); err != nil {
				t.Fatal(err)
			}
		}
		ops[i] = k
	}
	if err := inst.Check(ops); err != nil {
		t.Errorf("check after %v ops: %v", ops, err)
	}
	ops[len(ops)-1]++
	if err := inst.Check(ops); err == nil {
		t.Errorf("check accepted a miscount %v", ops)
	}
}

// TestCPUProfilePerRepetition: -cpuprofile writes one profile per timed
// repetition of each row, named after its case and system, and none for
// the warm-up.
func TestCPUProfilePerRepetition(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "p")
	s := &Suite{Name: "t", Cases: []Case{{Name: "c", Unit: "ops/s", Rows: []Row{
		{System: "a/b", Setup: func() (*Instance, error) {
			return &Instance{Workers: []func() error{func() error { return nil }}}, nil
		}},
	}}}}
	rn := &runner{duration: 5 * time.Millisecond, warmup: time.Millisecond, count: 2, progress: io.Discard, profile: prefix}
	for _, r := range rn.runCase(s, &s.Cases[0]) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	got, err := filepath.Glob(prefix + ".*")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{prefix + ".c.a_b.1", prefix + ".c.a_b.2"}
	if !slices.Equal(got, want) {
		t.Fatalf("profiles %v, want %v", got, want)
	}
	for _, f := range got {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Errorf("%s: empty or missing (%v)", f, err)
		}
	}
}
