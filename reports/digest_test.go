package reports

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durabench/durabench/harness/buildinfo"
)

// The committed report must come from the committed code: after any change
// to what produces a report, run `make report` (or `make baseline`) and
// commit its output.
func TestCommittedReportIsCurrent(t *testing.T) {
	root, err := buildinfo.ModuleRoot(".")
	require.NoError(t, err)
	f, err := os.Open(filepath.Join(root, "reports", "report.json"))
	require.NoError(t, err)
	defer f.Close()
	rep, err := ReadJSON(f)
	require.NoError(t, err)
	digest, err := CodeDigest(root)
	require.NoError(t, err)
	require.Equal(t, digest, rep.CodeDigest,
		"reports/report.json was produced by other code than this tree's: run `make baseline` (or `make report`) on a quiet machine and commit REPORT.md, REPORT_ja.md, reports/")
}

func TestCodeDigest(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	for _, f := range []string{"go.mod", "go.sum", WaiverFile, "criteria/a.go", "harness/b.go", "scenarios/ex/c_test.go", "reports/d.go", "cmd/e.go", "fixtures/p.yaml"} {
		write(f, f)
	}
	base, err := CodeDigest(root)
	require.NoError(t, err)
	again, err := CodeDigest(root)
	require.NoError(t, err)
	assert.Equal(t, base, again, "the digest is stable")

	for _, tt := range []struct {
		file    string
		changes bool
	}{
		{"scenarios/ex/c_test.go", true}, {"fixtures/p.yaml", true}, {"go.sum", true}, {WaiverFile, true},
		{"reports/report.json", false}, {"reports/evidence/ex.jsonl", false}, {"README.md", false}, {"agent/x.go", false},
	} {
		t.Run(tt.file, func(t *testing.T) {
			write(tt.file, "changed "+tt.file)
			got, err := CodeDigest(root)
			require.NoError(t, err)
			assert.Equal(t, tt.changes, got != base, "digest changed")
			base = got
		})
	}
}
