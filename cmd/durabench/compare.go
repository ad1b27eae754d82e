package main

import (
	"fmt"
	"io"
	"os"

	"github.com/durabench/durabench/reports"
)

func runCompare(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("compare", stderr)
	minEffect := fs.Float64("min-effect", 0.10, "smallest relative change of a PF median that counts as a regression")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 2 {
		return usagef("want BASELINE CURRENT (two report.json files), got %d argument(s)", fs.NArg())
	}
	if *minEffect < 0 || *minEffect >= 1 {
		return usagef("-min-effect: %v is outside [0, 1)", *minEffect)
	}
	var docs [2]*reports.JSONReport
	for i, path := range fs.Args() {
		f, err := os.Open(path)
		if err != nil {
			return usageError{err}
		}
		docs[i], err = reports.ReadJSON(f)
		f.Close()
		if err != nil {
			return usagef("%s: %v", path, err)
		}
	}
	regressions := reports.Compare(docs[0], docs[1], reports.CompareOptions{MinEffect: *minEffect})
	for _, r := range regressions {
		fmt.Fprintf(stdout, "regression: %s\n", r)
	}
	if len(regressions) > 0 {
		return fmt.Errorf("%d regression(s) against %s", len(regressions), fs.Arg(0))
	}
	fmt.Fprintf(stdout, "compare: no regression against %s\n", fs.Arg(0))
	return nil
}
