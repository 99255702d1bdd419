package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBench runs one short row of the harness through "weft bench" from
// a directory outside the source tree, and checks its JSON line and that
// a bad flag gives the harness's usage exit code.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bench module")
	}
	t.Chdir(t.TempDir()) // found from where the binary was built
	// The harness is built into a cache of the test's own (the Go build
	// cache stays the user's: the harness's packages are built once).
	// HOME moves, so the Go settings that default beneath it are pinned
	// first (the module cache too: nothing is downloaded again).
	env, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range strings.Split(strings.TrimSpace(string(env)), "\n") {
		t.Setenv([]string{"GOCACHE", "GOMODCACHE", "GOPATH"}[i], v)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	var out, errb bytes.Buffer
	args := []string{"bench", "-json", "-cases", "commit-rtt", "-systems", "tcp-echo", "-count", "1", "-duration", "50ms", "-warmup", "0", "replication"}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("weft bench: exit code %d\n%s", code, errb.String())
	}
	var rows []struct {
		Suite, Case, System, Unit string
		Value                     float64
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r struct {
			Suite, Case, System, Unit string
			Value                     float64
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("not a JSON row: %q: %v", sc.Text(), err)
		}
		rows = append(rows, r)
	}
	if len(rows) != 1 || rows[0].Case != "commit-rtt" || rows[0].System != "tcp-echo" || rows[0].Unit != "round trips/s" || rows[0].Value <= 0 {
		t.Fatalf("rows %+v, want one positive commit-rtt row of tcp-echo in round trips/s", rows)
	}

	out.Reset()
	errb.Reset()
	if code := run([]string{"bench", "-no-such-flag"}, &out, &errb); code != 2 {
		t.Fatalf("a bad flag: exit code %d, want the harness's 2\n%s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "-no-such-flag") {
		t.Fatalf("a bad flag: the harness did not name it:\n%s", errb.String())
	}
}

// TestBenchDir finds the bench module from inside the tree, and only
// its go.mod counts.
func TestBenchDir(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(filepath.Dir(wd)) // cmd/weft's grandparent
	for _, d := range []string{wd, filepath.Join(root, "bench")} {
		t.Run(filepath.Base(d), func(t *testing.T) {
			t.Chdir(d)
			got, err := benchDir()
			if err != nil || got != filepath.Join(root, "bench") {
				t.Fatalf("benchDir() = %q, %v; want %q", got, err, filepath.Join(root, "bench"))
			}
		})
	}
	if isBenchModule(root) {
		t.Fatalf("the main module's directory %s taken for the harness's", root)
	}
}
