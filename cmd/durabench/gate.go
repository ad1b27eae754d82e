package main

import (
	"fmt"
	"io"

	"github.com/durabench/durabench/reports"
)

func runGate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gate", stderr)
	var in reportInputs
	in.register(fs)
	requireControls := fs.Bool("require-controls", false, "also fail when a negative control did not run or was not measured")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	r, err := in.load()
	if err != nil {
		return err
	}
	problems := reports.Gate(r, *requireControls)
	for _, p := range problems {
		fmt.Fprintf(stdout, "gate: %s\n", p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d problem(s) fail the gate", len(problems))
	}
	fmt.Fprintln(stdout, "gate: ok")
	fmt.Fprintln(stdout, r.Summary())
	return nil
}
