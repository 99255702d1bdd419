// Command weft is Weft's command-line tool: one file per subcommand, each a
// function run<Name>(args, stdout, stderr) error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"bench", "run the benchmark harness: Weft beside the systems a user would pick instead", runBench},
		{"demo", "start a server and clients over TCP, printing live commit rates (-local: the core alone)", runDemo},
		{"gen", "generate Go types from a .weft schema", runGen},
		{"serve", "run a Weft server", runServe},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: weft <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-6s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'weft <command> -h' for a command's flags.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		var code exitCode
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &code):
			return int(code)
		default:
			fmt.Fprintf(stderr, "weft %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "weft: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}
