package main

import (
	"fmt"
	"io"
	"os"

	"github.com/durabench/durabench/reports"
)

func runCompare(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("compare", stderr)
	// The default is above the largest run-to-run change of a gated median
	// seen on the reference machine (see the README).
	minEffect := fs.Float64("min-effect", 0.20, "smallest relative change of a gated median that counts as a regression")
	// Steal in quiet periods of the reference machine stayed under 2%; the
	// slow periods that halved throughput ran at 10-30%.
	maxSteal := fs.Float64("max-steal", 5, "CPU time in percent the host's hypervisor may take during a timing check before a regression found in it is unconfirmed (0: never); a correctness check always counts")
	// Eight probes on the reference machine while another benchmark ran
	// there had CPU medians from 31.7 to 39.3 ms, 24% apart. 1.25 sets aside
	// only a slowdown beyond that: a conservative choice, to be calibrated
	// against probes recorded with PF runs on quiet and slow stretches.
	minProbe := fs.Float64("min-probe-slowdown", 1.25, "how many times longer the host probe's CPU pass must take than in the baseline (intervals apart) for a regression in timing checks to be unconfirmed: a slower host (0: never); a correctness check always counts")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 2 {
		return usagef("want BASELINE CURRENT (two report.json files), got %d argument(s)", fs.NArg())
	}
	if *minEffect < 0 || *minEffect >= 1 {
		return usagef("-min-effect: %v is outside [0, 1)", *minEffect)
	}
	if *maxSteal < 0 || *maxSteal > 100 {
		return usagef("-max-steal: %v is outside [0, 100]", *maxSteal)
	}
	if *minProbe != 0 && *minProbe < 1 {
		return usagef("-min-probe-slowdown: %v must be 0 (off) or at least 1", *minProbe)
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
	cmp := reports.Compare(docs[0], docs[1], reports.CompareOptions{MinEffect: *minEffect, MaxSteal: *maxSteal, MinProbeSlowdown: *minProbe})
	for _, r := range cmp.Regressions {
		fmt.Fprintf(stdout, "regression: %s\n", r)
	}
	for _, r := range cmp.Unconfirmed {
		fmt.Fprintf(stdout, "unconfirmed: %s\n", r)
	}
	for _, r := range cmp.Slower {
		fmt.Fprintf(stdout, "slower: %s\n", r)
	}
	if len(cmp.Unconfirmed) > 0 {
		fmt.Fprintf(stderr, "compare: %d regression(s) unconfirmed: the host was busy or slower while they were measured; rerun on a quiet machine to judge them\n", len(cmp.Unconfirmed))
	}
	if len(cmp.Regressions) > 0 {
		// `make test` reruns these once and compares again; a correctness
		// regression has none and fails at once.
		for _, cmd := range cmp.Rerun() {
			fmt.Fprintf(stdout, "rerun: %s\n", cmd)
		}
		return fmt.Errorf("%d regression(s) against %s", len(cmp.Regressions), fs.Arg(0))
	}
	fmt.Fprintf(stdout, "compare: no regression against %s (%d items, %d gated medians compared, min effect %.0f%%)\n",
		fs.Arg(0), len(docs[1].Items), cmp.Metrics, 100**minEffect)
	return nil
}
