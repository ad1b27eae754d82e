package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durabench/durabench/criteria"
	"github.com/durabench/durabench/harness/evidence"
)

const defaultProfile = "../../fixtures/profiles/default.yaml"

// writeEvidence writes evidence for the real catalog into a new directory:
// every ladder check passes, except those of level failLevel of the first
// fail-close item (0: none); every control gets controlOutcome ("" writes no
// control records); the first ladder check carries charts. It derives check
// ids from the catalog, so it holds for any catalog.
func writeEvidence(t *testing.T, controlOutcome evidence.Outcome, failLevel int, charts ...evidence.Chart) string {
	t.Helper()
	dir := t.TempDir()
	w, err := evidence.Create(dir, "test")
	require.NoError(t, err)
	defer func() { require.NoError(t, w.Close()) }()
	write := func(item string, c criteria.Check, out evidence.Outcome, control bool) {
		require.NoError(t, w.Write(evidence.Record{Check: c.ID, Item: item, Outcome: out, Control: control,
			Detail: "observed " + string(out), Reproduce: "go test ./scenarios/x -run " + c.ID, Charts: charts, Predicate: "holds"}))
		charts = nil
	}
	failItem := ""
	for _, it := range criteria.Catalog() {
		if failItem == "" && it.FailClose != criteria.FailCloseNever {
			failItem = it.ID
		}
		for _, lv := range it.Levels {
			for _, c := range lv.Checks {
				out := evidence.Passed
				if it.ID == failItem && lv.Stars == failLevel {
					out = evidence.Failed
				}
				write(it.ID, c, out, false)
			}
		}
		for _, c := range it.Controls {
			if controlOutcome != "" {
				write(it.ID, c, controlOutcome, true)
			}
		}
	}
	require.NoError(t, evidence.WriteEnvironment(dir, evidence.Environment{Package: "test", Mode: "embedded", CPUs: 4, GoVersion: "go1.26.8"}))
	return dir
}

func badProfile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte("name: bad\nduration: forever\nside_effects: read-only\ndeployment: managed\nscale: \"~100\"\ndeterminism: deterministic\nlanguage: go\n"), 0o644))
	return path
}

func TestRunReport(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nowhere")
	for _, tc := range []struct {
		name       string
		args       []string
		status     int
		wantStderr []string
	}{
		{"missing evidence directory", []string{"-evidence", missing, "-profile", defaultProfile}, 2, []string{missing, "make report"}},
		{"empty evidence directory", []string{"-evidence", t.TempDir(), "-profile", defaultProfile}, 2, []string{"no evidence found", "make report"}},
		{"bad profile", []string{"-evidence", writeEvidence(t, evidence.Failed, 0), "-profile", badProfile(t)}, 2, []string{"profile field duration", "forever"}},
		{"missing profile", []string{"-evidence", writeEvidence(t, evidence.Failed, 0), "-profile", "nope.yaml"}, 2, []string{"nope.yaml"}},
		{"stray argument", []string{"extra"}, 2, []string{`unexpected argument "extra"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			status := run(append([]string{"report", "-out", t.TempDir()}, tc.args...), &stdout, &stderr)
			assert.Equal(t, tc.status, status, stderr.String())
			for _, w := range tc.wantStderr {
				assert.Contains(t, stderr.String(), w)
			}
		})
	}
}

func TestRunReportWritesFiles(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	err := runReport([]string{"-evidence", writeEvidence(t, evidence.Failed, 0), "-profile", defaultProfile, "-out", out}, &stdout, &stderr)
	require.NoError(t, err)

	for _, name := range []string{"REPORT.md", "REPORT_ja.md", filepath.Join("reports", "report.json")} {
		path := filepath.Join(out, name)
		assert.FileExists(t, path)
		assert.Contains(t, stdout.String(), "wrote "+path)
	}
	// Every check passed, but three levels are unreached (experimental or
	// preview features: OP-05 5, OP-06 4, AI-05 5), so the mean is below 5.
	assert.Contains(t, stdout.String(), "overall: ★★★★☆ 4 (mean 4.93, 58 of 58 items measured)")

	b, err := os.ReadFile(filepath.Join(out, "reports", "report.json"))
	require.NoError(t, err)
	var doc struct {
		Profile struct{ Name string }
		Items   []map[string]any
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	assert.Equal(t, "default", doc.Profile.Name)
	assert.Len(t, doc.Items, len(criteria.Catalog()))

	ja, err := os.ReadFile(filepath.Join(out, "REPORT_ja.md"))
	require.NoError(t, err)
	assert.Contains(t, string(ja), "# Temporal 耐久性実行 検証レポート")
}

func TestRunReportRejectsUnknownCheck(t *testing.T) {
	dir := t.TempDir()
	w, err := evidence.Create(dir, "typo")
	require.NoError(t, err)
	require.NoError(t, w.Write(evidence.Record{Check: "EX-01.no-such-check", Item: "EX-01", Outcome: evidence.Passed, Detail: "d", Reproduce: "r"}))
	require.NoError(t, w.Close())

	var stdout, stderr bytes.Buffer
	status := run([]string{"report", "-evidence", dir, "-profile", defaultProfile, "-out", t.TempDir()}, &stdout, &stderr)
	assert.Equal(t, 1, status, "a harness bug, not a usage error")
	assert.Contains(t, stderr.String(), "EX-01.no-such-check")
}

func latencyChart(id string) evidence.Chart {
	return evidence.Chart{ID: id, Title: "Step latency", Kind: evidence.Histogram, XLabel: "latency (ms)", LogX: true,
		Series: []evidence.Series{{Name: "activity", Y: []float64{12, 9, 15, 30}}, {Name: "function call", Y: []float64{0.002, 0.003}}}}
}

func TestRunReportWritesCharts(t *testing.T) {
	out := t.TempDir()
	chartDir := filepath.Join(out, "reports", "charts")
	require.NoError(t, os.MkdirAll(chartDir, 0o755))
	stale, other := filepath.Join(chartDir, "gone.svg"), filepath.Join(chartDir, "notes.txt")
	for _, p := range []string{stale, other} {
		require.NoError(t, os.WriteFile(p, []byte("old"), 0o644))
	}
	var stdout, stderr bytes.Buffer
	err := runReport([]string{"-evidence", writeEvidence(t, evidence.Failed, 0, latencyChart("EX-01-latency")),
		"-profile", defaultProfile, "-out", out}, &stdout, &stderr)
	require.NoError(t, err)
	assert.Contains(t, stdout.String(), "wrote 1 chart(s) to "+chartDir+", removed 1 stale")

	svg, err := os.ReadFile(filepath.Join(chartDir, "EX-01-latency.svg"))
	require.NoError(t, err)
	var root struct{ XMLName xml.Name }
	require.NoError(t, xml.Unmarshal(svg, &root))
	assert.Equal(t, "svg", root.XMLName.Local)
	assert.NoFileExists(t, stale, "a chart this run did not draw is removed")
	assert.FileExists(t, other, "only SVGs are cleaned")

	for _, name := range []string{"REPORT.md", "REPORT_ja.md"} {
		md, err := os.ReadFile(filepath.Join(out, name))
		require.NoError(t, err)
		assert.Contains(t, string(md), "![Step latency](reports/charts/EX-01-latency.svg)", name)
	}
	js, err := os.ReadFile(filepath.Join(out, "reports", "report.json"))
	require.NoError(t, err)
	assert.Contains(t, string(js), `"path": "reports/charts/EX-01-latency.svg"`)
}

func TestRunReportBadChartWritesNothing(t *testing.T) {
	out := t.TempDir()
	chart := latencyChart("EX-01-latency")
	var stdout, stderr bytes.Buffer
	status := run([]string{"report", "-evidence", writeEvidence(t, evidence.Failed, 0, chart, chart),
		"-profile", defaultProfile, "-out", out}, &stdout, &stderr)
	assert.Equal(t, 1, status, "a duplicate chart id is a harness bug")
	assert.Contains(t, stderr.String(), `chart id "EX-01-latency" is used by checks`)
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing is written when a chart fails")
}
