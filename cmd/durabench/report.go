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
	"github.com/durabench/durabench/harness/buildinfo"
	"github.com/durabench/durabench/harness/evidence"
	"github.com/durabench/durabench/reports"
)

// reportInputs are the flags report and gate share: what to rate, under
// which premise.
type reportInputs struct {
	evidenceDir string
	profilePath string
	waiverPath  string
}

func (in *reportInputs) register(fs *flag.FlagSet) {
	fs.StringVar(&in.evidenceDir, "evidence", "reports/evidence", "directory of evidence the scenarios wrote")
	fs.StringVar(&in.profilePath, "profile", "fixtures/profiles/default.yaml", "premise profile (YAML)")
	fs.StringVar(&in.waiverPath, "waivers", reports.WaiverFile, "fail-close items the gate lets through unmeasured (YAML; a missing file waives nothing)")
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
	catalog := criteria.Catalog()
	waivers, err := reports.LoadWaivers(in.waiverPath, catalog)
	if err != nil {
		return nil, usageError{err}
	}
	root, err := buildinfo.ModuleRoot(".")
	if err != nil {
		return nil, usageError{err}
	}
	digest, err := reports.CodeDigest(root)
	if err != nil {
		return nil, err
	}
	r, err := reports.Build(catalog, criteria.Categories(), profile, set, time.Now().UTC())
	if err != nil {
		return nil, err
	}
	r.Waivers, r.CodeDigest = waivers, digest
	return r, nil
}

func runReport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", stderr)
	var in reportInputs
	in.register(fs)
	out := fs.String("out", ".", "directory to write REPORT.md, REPORT_ja.md, reports/report.json and reports/charts/*.svg into")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	r, err := in.load()
	if err != nil {
		return err
	}
	// Render everything before writing anything, so that a failure leaves
	// the previous report whole.
	files, err := renderReport(r, *out)
	if err != nil {
		return err
	}
	charts := filepath.Join(*out, filepath.FromSlash(reports.ChartDir))
	written, nCharts := map[string]bool{}, 0
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return err
		}
		written[f.path] = true
		if filepath.Dir(f.path) == charts {
			nCharts++ // one line for all of them: a run may draw dozens
		} else {
			fmt.Fprintf(stdout, "wrote %s\n", f.path)
		}
	}
	removed, err := removeStaleCharts(charts, written)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d chart(s) to %s, removed %d stale\n", nCharts, charts, removed)
	fmt.Fprintln(stdout, r.Summary())
	return nil
}

type renderedFile struct {
	path string
	data []byte
}

// renderReport renders the charts, both markdown reports and report.json
// under out, charts first so that the reports never link a chart that failed.
func renderReport(r *reports.Report, out string) ([]renderedFile, error) {
	charts, err := r.RenderCharts()
	if err != nil {
		return nil, err
	}
	var files []renderedFile
	for _, c := range charts {
		files = append(files, renderedFile{filepath.Join(out, filepath.FromSlash(c.Path)), c.SVG})
	}
	for _, f := range []struct {
		path  string
		write func(io.Writer) error
	}{
		{filepath.Join(out, "REPORT.md"), func(w io.Writer) error { return reports.WriteMarkdown(w, r, "en") }},
		{filepath.Join(out, "REPORT_ja.md"), func(w io.Writer) error { return reports.WriteMarkdown(w, r, "ja") }},
		{filepath.Join(out, "reports", "report.json"), func(w io.Writer) error { return reports.WriteJSON(w, r) }},
	} {
		var buf bytes.Buffer
		if err := f.write(&buf); err != nil {
			return nil, fmt.Errorf("%s: %w", f.path, err)
		}
		files = append(files, renderedFile{f.path, buf.Bytes()})
	}
	return files, nil
}

// removeStaleCharts deletes the SVGs in dir that this run did not write: a
// chart whose check no longer draws it must not linger beside the report.
func removeStaleCharts(dir string, written map[string]bool) (int, error) {
	stale, err := filepath.Glob(filepath.Join(dir, "*.svg"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range stale {
		if written[p] {
			continue
		}
		if err := os.Remove(p); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
