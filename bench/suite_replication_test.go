package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// replArgs run the replication suite very briefly.
var replArgs = []string{"-duration", "10ms", "-count", "1", "-warmup", "1ms"}

// replPeers lists the peer rows of the replication suite: (case, system).
var replPeers = [][2]string{
	{"commit-rtt", sysTCPEcho},
	{"commit-chained", sysRedis},
	{"rmw-8c", sysRedis},
	{"counter-8c", sysRedis},
	{"fanout-1w-8r", sysNATS},
	{"fanout-1w-8r", sysRedis},
}

var replCases = []string{"commit-rtt", "commit-chained", "rmw-8c", "counter-8c", "fanout-1w-8r", "sync-100k"}

// smokeSyncObjects is the size of sync-100k's share in tests: the case's
// code, not its full size, is what they check.
const smokeSyncObjects = 2_500

func TestMain(m *testing.M) {
	syncObjects = smokeSyncObjects
	restartObjects, restartLog = smokeRestartObjects, smokeRestartLog
	os.Exit(m.Run())
}

func haveRedis() bool {
	_, err := exec.LookPath(redisServerBin)
	return err == nil
}

// TestReplicationSuiteShape: every case has its weft row and the peers of
// the issue.
func TestReplicationSuiteShape(t *testing.T) {
	s := replicationSuite()
	rows := map[[2]string]bool{}
	var names []string
	for _, c := range s.Cases {
		names = append(names, c.Name)
		for _, r := range c.Rows {
			rows[[2]string{c.Name, r.System}] = true
		}
		if c.Rows[0].System != sysWeft {
			t.Errorf("%s: first row %s, want weft", c.Name, c.Rows[0].System)
		}
	}
	if strings.Join(names, ",") != strings.Join(replCases, ",") {
		t.Errorf("cases %v, want %v", names, replCases)
	}
	for _, p := range replPeers {
		if !rows[p] {
			t.Errorf("no row %v", p)
		}
	}
	if len(rows) != len(replPeers)+len(replCases) {
		t.Errorf("%d rows, want %d", len(rows), len(replPeers)+len(replCases))
	}
}

// TestReplicationSmoke runs the whole suite briefly, as a table and as
// JSON. Without redis-server the redis rows must be reported skipped.
func TestReplicationSmoke(t *testing.T) {
	redisOK := haveRedis()
	if !redisOK {
		t.Logf("%s not in PATH: redis rows must be skipped", redisServerBin)
	}

	var stdout, stderr bytes.Buffer
	if code := run(append(append([]string{}, replArgs...), "replication"), &stdout, &stderr); code != 0 {
		t.Fatalf("table: exit code %d, stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	if strings.Contains(out, "FAILED") {
		t.Errorf("table has a failed row:\n%s", out)
	}
	seen := tableRows(out, replCases)
	for _, c := range replCases {
		got, ok := seen[[2]string{c, sysWeft}]
		switch {
		case !ok:
			t.Errorf("table has no weft row for %s:\n%s", c, out)
		case strings.HasPrefix(got, "skipped"):
			t.Errorf("weft row of %s skipped: %q", c, got)
		}
	}
	for _, p := range replPeers {
		got, ok := seen[p]
		switch {
		case !ok:
			t.Errorf("table has no row %v:\n%s", p, out)
		case p[1] == sysRedis && !redisOK:
			if !strings.HasPrefix(got, "skipped: ") {
				t.Errorf("row %v: %q, want skipped", p, got)
			}
		case strings.HasPrefix(got, "skipped"):
			t.Errorf("row %v skipped: %q", p, got)
		}
	}

	stdout.Reset()
	stderr.Reset()
	if code := run(append(append([]string{}, replArgs...), "-json", "replication"), &stdout, &stderr); code != 0 {
		t.Fatalf("json: exit code %d, stderr:\n%s", code, stderr.String())
	}
	got := map[[2]string]bool{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var row struct {
			Suite, Case, System, Unit string
			Value                     float64
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Errorf("%q: %v", sc.Text(), err)
			continue
		}
		if row.Suite != "replication" || row.Value <= 0 || !strings.HasSuffix(row.Unit, "/s") {
			t.Errorf("bad row %q", sc.Text())
		}
		key := [2]string{row.Case, row.System}
		if got[key] {
			t.Errorf("duplicate row %v", key)
		}
		got[key] = true
	}
	want := 0
	for _, p := range replPeers {
		if p[1] == sysRedis && !redisOK {
			continue
		}
		want++
		if !got[p] {
			t.Errorf("no JSON row for %v:\n%s", p, stdout.String())
		}
	}
	for _, c := range replCases {
		want++
		if !got[[2]string{c, sysWeft}] {
			t.Errorf("no JSON row for weft on %s:\n%s", c, stdout.String())
		}
	}
	if len(got) != want {
		t.Errorf("%d JSON rows, want %d (skipped rows left out):\n%s", len(got), want, stdout.String())
	}
}

// TestReplicationRedisMissing: without the redis-server binary the redis
// rows are skipped, saying so in the table and on stderr, and the run
// succeeds.
func TestReplicationRedisMissing(t *testing.T) {
	old := redisServerBin
	redisServerBin = "bench-no-such-redis-server"
	defer func() { redisServerBin = old }()

	var stdout, stderr bytes.Buffer
	args := append(append([]string{}, replArgs...), "-systems", sysRedis, "replication")
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr.String())
	}
	const msg = "skipped: bench-no-such-redis-server not found in PATH"
	if n := strings.Count(stdout.String(), msg); n != 4 {
		t.Errorf("table: %d rows %q, want 4:\n%s", n, msg, stdout.String())
	}
	if !strings.Contains(stderr.String(), "replication/counter-8c redis "+msg) {
		t.Errorf("stderr does not say the redis row is skipped:\n%s", stderr.String())
	}

	stdout.Reset()
	if code := run(append([]string{"-json"}, args...), &stdout, &stderr); code != 0 {
		t.Fatalf("json: exit code %d", code)
	}
	if stdout.Len() != 0 {
		t.Errorf("skipped rows in the JSON:\n%s", stdout.String())
	}
}

// TestReplicationRowsCount: each peer row's Check accepts the ops done and
// rejects one more.
func TestReplicationRowsCount(t *testing.T) {
	const k = 7
	for _, c := range replicationSuite().Cases {
		for _, row := range c.Rows {
			t.Run(c.Name+"/"+row.System, func(t *testing.T) {
				inst, err := row.Setup()
				if errors.Is(err, ErrSkip) {
					t.Skip(err)
				}
				if err != nil {
					t.Fatal(err)
				}
				defer func() {
					if err := inst.Close(); err != nil {
						t.Error(err)
					}
				}()
				checkCountsExact(t, inst, k)
			})
		}
	}
}

// TestSkipRow: a row whose Setup returns ErrSkip is neither a failure nor
// a value: "skipped: reason" in the table, nothing in the JSON.
func TestSkipRow(t *testing.T) {
	s := &Suite{Name: "fake", Reference: "ref", Cases: []Case{{
		Name: "c", Unit: "ops/s", AllocUnit: "allocs/op",
		Rows: []Row{
			{System: "ref", Setup: func() (*Instance, error) { return nil, skipRow("no %s here", "binary") }},
			{System: "good", Setup: func() (*Instance, error) {
				return &Instance{Workers: []func() error{func() error { return nil }}}, nil
			}},
		},
	}}}
	var progress bytes.Buffer
	rn := &runner{duration: time.Millisecond, warmup: time.Millisecond, count: 2, progress: &progress}
	res := rn.runCase(s, &s.Cases[0])
	for _, r := range res {
		if r.Err != nil {
			t.Errorf("%s %s: %v", r.System, r.Unit, r.Err)
		}
		if skipped := r.System == "ref"; skipped != (r.Skipped == "skipped: no binary here") {
			t.Errorf("%s %s: skipped %q", r.System, r.Unit, r.Skipped)
		}
	}
	if !strings.Contains(progress.String(), "fake/c ref skipped: no binary here") {
		t.Errorf("progress:\n%s", progress.String())
	}
	var table bytes.Buffer
	if err := writeTable(&table, s, res, time.Millisecond, 2); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(table.String(), "skipped: no binary here"); n != 2 {
		t.Errorf("%d skipped rows, want 2 (throughput and allocs):\n%s", n, table.String())
	}
	var js bytes.Buffer
	if err := writeJSON(&js, res); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(js.String(), `"ref"`) || strings.Count(js.String(), "\n") != 2 {
		t.Errorf("JSON:\n%s", js.String())
	}
}

// tableRows maps each (case, system) row of a printed table to the rest of
// its line. Rows carry the case name only on a case's first line, so the
// current case is tracked.
func tableRows(out string, cases []string) map[[2]string]string {
	seen := map[[2]string]string{}
	cur := ""
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		for _, c := range cases {
			if len(f) > 0 && f[0] == c {
				cur, f = c, f[1:]
			}
		}
		if len(f) < 2 || cur == "" {
			continue
		}
		seen[[2]string{cur, f[0]}] = strings.Join(f[1:], " ")
	}
	return seen
}
