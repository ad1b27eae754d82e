package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/durabench/durabench/criteria"
	"github.com/durabench/durabench/harness/evidence"
	"github.com/durabench/durabench/reports"
)

// reportInputs are the flags report and gate share: what to rate, under
// which premise.
type reportInputs struct {
	evidenceDir string
	profilePath string
}

func (in *reportInputs) register(fs *flag.FlagSet) {
	fs.StringVar(&in.evidenceDir, "evidence", "reports/evidence", "directory of evidence the scenarios wrote")
	fs.StringVar(&in.profilePath, "profile", "fixtures/profiles/default.yaml", "premise profile (YAML)")
}

// load rates the catalog from the evidence. Missing evidence and a bad
// profile are the caller's to fix (usage errors); evidence the catalog does
// not know is a harness bug.
func (in *reportInputs) load() (*reports.Report, error) {
	profile, err := criteria.LoadProfile(in.profilePath)
	if err != nil {
		return nil, usageError{err}
	}
	set, err := evidence.Load(in.evidenceDir)
	if errors.Is(err, evidence.ErrNoEvidence) {
		return nil, usageError{fmt.Errorf("%w in %s: run the scenarios first with `make report`, or pass -evidence DIR",
			evidence.ErrNoEvidence, in.evidenceDir)}
	}
	if err != nil {
		return nil, err
	}
	return reports.Build(criteria.Catalog(), criteria.Categories(), profile, set, time.Now().UTC())
}

func runReport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", stderr)
	var in reportInputs
	in.register(fs)
	out := fs.String("out", ".", "directory to write REPORT.md, REPORT_ja.md and reports/report.json into")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	r, err := in.load()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(*out, "reports"), 0o755); err != nil {
		return err
	}
	files := []struct {
		path  string
		write func(io.Writer) error
	}{
		{filepath.Join(*out, "REPORT.md"), func(w io.Writer) error { return reports.WriteMarkdown(w, r, "en") }},
		{filepath.Join(*out, "REPORT_ja.md"), func(w io.Writer) error { return reports.WriteMarkdown(w, r, "ja") }},
		{filepath.Join(*out, "reports", "report.json"), func(w io.Writer) error { return reports.WriteJSON(w, r) }},
	}
	for _, f := range files {
		// Render fully before writing so that a failure leaves no half file.
		var buf bytes.Buffer
		if err := f.write(&buf); err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
		if err := os.WriteFile(f.path, buf.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", f.path)
	}
	fmt.Fprintln(stdout, r.Summary())
	return nil
}
