// Command durabench is the one binary of durabench: it embeds the Temporal
// dev server, renders reports from evidence, gates CI and prints versions.
//
// Usage:
//
//	durabench devserver [flags]   run the embedded Temporal server
//	durabench report [flags]      render REPORT.md, REPORT_ja.md and reports/report.json
//	durabench gate [flags]        fail when a fail-close item or a negative control says so
//	durabench compare BASE CUR    fail when stars drop, a fail-close item fails or a PF median regresses
//	durabench version             print the durabench, SDK and server versions
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// usageError is bad input: the caller gets exit status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// unavailableError is a service the command needs that did not answer (a
// database server, say): the caller gets exit status 3, so that a harness
// can report its checks as not measured rather than failed.
type unavailableError struct{ err error }

func (u unavailableError) Error() string { return u.err.Error() }
func (u unavailableError) Unwrap() error { return u.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"devserver", "run the embedded Temporal dev server (SQLite)", runDevServer},
		{"report", "render REPORT.md, REPORT_ja.md and reports/report.json from evidence", runReport},
		{"gate", "exit non-zero when a fail-close item rates 2 or less or a negative control did not fail", runGate},
		{"compare", "compare two report.json files; exit non-zero on a regression", runCompare},
		{"version", "print durabench, Go, SDK and server versions", runVersion},
		{"agent", "agent serve: the background agent's API and worker (embedded server, SQLite, local LLM by default)", runAgent},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr)
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
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		}
		fmt.Fprintf(stderr, "durabench %s: %v\n", c.name, err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		var ua unavailableError
		if errors.As(err, &ua) {
			return 3
		}
		return 1
	}
	fmt.Fprintf(stderr, "durabench: unknown command %q\n", args[0])
	printUsage(stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: durabench <command> [flags]")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
}

// newFlagSet returns a flag set whose parse errors become usage errors.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("durabench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
