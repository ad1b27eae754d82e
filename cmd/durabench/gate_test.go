package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/durabench/durabench/harness/evidence"
)

func TestRunGate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		evidence   string
		args       []string
		status     int
		wantStdout []string
		wantStderr string
	}{
		{name: "all good", evidence: writeEvidence(t, evidence.Failed, 0), args: []string{"-require-controls"},
			status: 0, wantStdout: []string{"gate: ok", "overall: "}},
		{name: "control passed", evidence: writeEvidence(t, evidence.Passed, 0),
			status: 1, wantStdout: []string{"gate: negative control", "passed but must fail"}, wantStderr: "fail the gate"},
		{name: "controls missing, not required", evidence: writeEvidence(t, "", 0), status: 0, wantStdout: []string{"gate: ok"}},
		{name: "controls missing, required", evidence: writeEvidence(t, "", 0), args: []string{"-require-controls"},
			status: 1, wantStdout: []string{"did not run"}},
		{name: "fail-close item rates 2", evidence: writeEvidence(t, evidence.Failed, 3),
			status: 1, wantStdout: []string{"gate: fail-close item", "rates 2"}},
		{name: "no evidence", evidence: filepath.Join(t.TempDir(), "none"), status: 2, wantStderr: "make report"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"gate", "-evidence", tc.evidence, "-profile", defaultProfile}, tc.args...)
			status := run(args, &stdout, &stderr)
			assert.Equal(t, tc.status, status, "stdout: %s\nstderr: %s", stdout.String(), stderr.String())
			for _, w := range tc.wantStdout {
				assert.Contains(t, stdout.String(), w)
			}
			assert.Contains(t, stderr.String(), tc.wantStderr)
		})
	}
}
