package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

const benchUsage = `usage: weft bench [flags] [suite ...]

Bench runs Weft's benchmark harness: the suites stm, replication and
durable, each measuring Weft beside what a user would pick instead (other
Go STMs, a bare TCP echo, Redis, NATS, Pebble) in one run, and printing
medians, spreads and ratios. The flags and suites are the harness's own:
'weft bench -h' lists them. Examples:

	weft bench replication
	weft bench -cases rmw-8c -count 9 replication
	weft bench -json durable

The harness is the module in the source tree's bench directory, kept apart
so that the weft binary does not carry the peers (a NATS server, other
STMs). Bench finds it above the working directory, or else where this
binary was built from, builds it with the Go toolchain into the user's
cache directory, and runs it in the working directory.
`

// runBench is "weft bench": the harness of the bench module, built from
// the source tree and run with bench's arguments, its output and its exit
// code.
func runBench(args []string, stdout, stderr io.Writer) error {
	help := len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help")
	if help {
		fmt.Fprint(stdout, benchUsage+"\n")
		args = []string{"-h"} // and the harness's flags
	}
	dir, err := benchDir()
	if err != nil {
		return err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the harness is built with the Go toolchain, and no go command is on PATH: %w", err)
	}
	// Built, not "go run": the harness's exit code (1 for a failed row, 2
	// for bad usage) is then the command's. The build cache makes a
	// rebuild of an unchanged harness quick.
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	// One binary per source tree: weft bench from two trees at once runs
	// each its own harness.
	sum := sha256.Sum256([]byte(dir))
	bin := filepath.Join(cache, "weft", "bench-"+hex.EncodeToString(sum[:6]))
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	build := exec.Command(goTool, "build", "-o", bin, ".")
	build.Dir, build.Stdout, build.Stderr = dir, stderr, stderr
	// For this machine, whatever GOOS or GOARCH the environment says.
	build.Env = append(os.Environ(), "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the harness in %s: %w", dir, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if help {
		cmd.Stderr = stdout // the flag package prints the usage there
	}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			if help {
				return nil
			}
			return exitCode(ee.ExitCode()) // the harness said why
		}
		return fmt.Errorf("running the harness: %w", err)
	}
	return nil
}

// benchDir finds the bench module: in the source tree holding the working
// directory, else in the one this binary was built from.
func benchDir() (string, error) {
	var tried []string
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, start := range starts {
		for d := start; ; d = filepath.Dir(d) {
			if isBenchModule(filepath.Join(d, "bench")) {
				return filepath.Join(d, "bench"), nil
			}
			if isBenchModule(d) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
		tried = append(tried, start)
	}
	return "", fmt.Errorf("no Weft source tree (its bench directory) above %s: run weft bench from a clone of the repository", strings.Join(tried, " or "))
}

// isBenchModule reports whether dir holds the harness's go.mod.
func isBenchModule(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == "github.com/weft-stm/weft/bench"
		}
	}
	return false
}

// exitCode is an error that only sets the process's exit code: what went
// wrong was already said.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit code %d", int(e)) }
