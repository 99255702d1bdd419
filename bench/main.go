// Command bench compares weft with other Go STMs and a mutex baseline.
//
//	go run . [flags] [suite ...]
//
// With no suite it runs them all. It prints a table, or with -json one JSON
// object per line; progress goes to stderr. See README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

// suites lists every suite, in the order they run. Add a suite by adding
// its file (suite_NAME.go) and a line here.
func suites() []*Suite {
	return []*Suite{
		stmSuite(),
		replicationSuite(),
		durableSuite(),
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code (0 ok, 1 a row
// failed, 2 bad usage).
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		jsonOut  = fs.Bool("json", false, "print one JSON object per line instead of a table")
		duration = fs.Duration("duration", time.Second, "measured time of one repetition of one row")
		count    = fs.Int("count", 5, "repetitions per row; the median is reported")
		warmup   = fs.Duration("warmup", 100*time.Millisecond, "untimed run of each row before its first repetition (at most -duration; 0 for none)")
		cases    = fs.String("cases", "", "cases to run: comma-separated names (exact match on `case` or `suite/case`) or regexps (otherwise)")
		systems  = fs.String("systems", "", "systems to run: comma-separated exact names (default all)")
		cpuProf  = fs.String("cpuprofile", "", "write a CPU profile of each timed repetition (its measured window only) to `prefix`.case.system.rep; go tool pprof merges several")
		history  = fs.Int("restart-history", 0, "restart-1m: `commits` made to the large share before its log, by a server checkpointing as by default (the issue's 10000000 take several minutes of setup)")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bench [flags] [suite ...]\n\nsuites:\n")
		for _, s := range suites() {
			fmt.Fprintf(stderr, "  %-12s %s\n", s.Name, s.Doc)
		}
		fmt.Fprintf(stderr, "\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *duration <= 0 || *count <= 0 || *warmup < 0 || *history < 0 {
		fmt.Fprintln(stderr, "bench: -duration and -count must be positive, -warmup and -restart-history not negative")
		return 2
	}
	restartHistory, setupProgress = *history, stderr
	caseFilter, err := newCaseFilter(*cases)
	if err != nil {
		fmt.Fprintf(stderr, "bench: -cases: %v\n", err)
		return 2
	}
	var systemSet map[string]bool
	if *systems != "" {
		systemSet = map[string]bool{}
		for _, s := range strings.Split(*systems, ",") {
			systemSet[strings.TrimSpace(s)] = true
		}
	}

	selected, err := selectSuites(suites(), fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}

	if load, ok := loadAverage(); ok && load > float64(runtime.NumCPU())/2 {
		fmt.Fprintf(stderr, "bench: load average %.2f on %d CPUs: other processes compete, expect noisy numbers\n", load, runtime.NumCPU())
	}
	rn := &runner{duration: *duration, warmup: min(*warmup, *duration), count: *count, progress: stderr, profile: *cpuProf}
	code, ran := 0, 0
	for _, s := range selected {
		var results []*Result
		for _, c := range s.Cases {
			if !caseFilter(s.Name, c.Name) {
				continue
			}
			c.Rows = slices.DeleteFunc(slices.Clone(c.Rows), func(r Row) bool {
				return systemSet != nil && !systemSet[r.System]
			})
			if len(c.Rows) == 0 {
				continue
			}
			ran++
			rs := rn.runCase(s, &c)
			for _, r := range rs {
				if r.Err != nil {
					code = 1
				}
			}
			if *jsonOut {
				// Stream per case, so a long run's finished cases are
				// already out if it is interrupted.
				if err := writeJSON(stdout, rs); err != nil {
					fmt.Fprintf(stderr, "bench: %v\n", err)
					return 1
				}
			}
			results = append(results, rs...)
		}
		if !*jsonOut && len(results) > 0 {
			if err := writeTable(stdout, s, results, *duration, *count); err != nil {
				fmt.Fprintf(stderr, "bench: %v\n", err)
				return 1
			}
		}
	}
	if ran == 0 {
		fmt.Fprintln(stderr, "bench: no case matches -cases/-systems")
		return 2
	}
	return code
}

// selectSuites returns the suites named in args, or all with no args.
func selectSuites(all []*Suite, args []string) ([]*Suite, error) {
	if len(args) == 0 {
		return all, nil
	}
	var out []*Suite
	for _, name := range args {
		i := slices.IndexFunc(all, func(s *Suite) bool { return s.Name == name })
		if i < 0 {
			var names []string
			for _, s := range all {
				names = append(names, s.Name)
			}
			return nil, fmt.Errorf("unknown suite %q (have: %s)", name, strings.Join(names, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// newCaseFilter parses -cases. Each comma-separated element matches a case
// exactly by name or by suite/name; an element that is neither is a regexp
// matched (unanchored) against suite/name. So "1var-rmw" selects just that
// case while "rmw" or "^stm/1var" select several.
func newCaseFilter(spec string) (func(suite, name string) bool, error) {
	if strings.TrimSpace(spec) == "" {
		return func(string, string) bool { return true }, nil
	}
	type elem struct {
		exact string
		re    *regexp.Regexp
	}
	var elems []elem
	for _, e := range strings.Split(spec, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, err
		}
		elems = append(elems, elem{exact: e, re: re})
	}
	// An element names a case exactly if some case has that name; only
	// then is it not used as a regexp.
	known := map[string]bool{}
	for _, s := range suites() {
		for _, c := range s.Cases {
			known[c.Name] = true
			known[s.Name+"/"+c.Name] = true
		}
	}
	return func(suite, name string) bool {
		full := suite + "/" + name
		for _, e := range elems {
			if known[e.exact] {
				if e.exact == name || e.exact == full {
					return true
				}
				continue
			}
			if e.re.MatchString(full) {
				return true
			}
		}
		return false
	}, nil
}
