package harness

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durabench/durabench/harness/calibrate"
	"github.com/durabench/durabench/harness/evidence"
	"github.com/durabench/durabench/harness/predicate"
)

// fatalTB stands in for a test so that Decide's refusal can be observed:
// Fatalf records the message and ends the goroutine, as testing's does.
type fatalTB struct {
	testing.TB
	fatal string
}

func (f *fatalTB) Helper()             {}
func (f *fatalTB) Name() string        { return "TestX/y" }
func (f *fatalTB) Cleanup(func())      {}
func (f *fatalTB) Logf(string, ...any) {}
func (f *fatalTB) Fatalf(format string, a ...any) {
	f.fatal = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

// TestDecide: a check is decided by its own predicate, a control by the
// predicate of the check the catalog says it guards, and anything else is a
// harness bug that stops the test.
func TestDecide(t *testing.T) {
	positive := func(n int) bool { return n > 0 }
	rejection := predicate.New("EX-03.duplicate-start-rejected", "positive", positive)
	chaos := predicate.New("EX-01.chaos", "chaosPositive", positive)
	tests := []struct {
		name    string
		id      string
		control bool
		p       *predicate.P[int]
		in      int
		want    evidence.Outcome
		fatal   string
	}{
		{name: "a check with its predicate", id: "EX-03.duplicate-start-rejected", p: rejection, in: 1, want: evidence.Passed},
		{name: "a check whose predicate returns false", id: "EX-03.duplicate-start-rejected", p: rejection, in: 0, want: evidence.Failed},
		{name: "a control with the guarded predicate", id: "EX-03.control-terminate-existing", control: true, p: rejection, in: 0, want: evidence.Failed},
		{name: "a control with another check's predicate", id: "EX-03.control-terminate-existing", control: true, p: chaos, in: 0,
			fatal: "negative control EX-03.control-terminate-existing is decided by predicate chaosPositive of check EX-01.chaos; it must use the predicate of EX-03.duplicate-start-rejected"},
		{name: "a check with another check's predicate", id: "EX-01.workflow-completes", p: chaos, in: 1,
			fatal: "check EX-01.workflow-completes is decided by predicate chaosPositive of check EX-01.chaos; it must use the predicate of EX-01.workflow-completes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := evidence.Create(dir, "x")
			require.NoError(t, err)
			env := &Env{PkgPath: "./x", evidence: w}
			tb := &fatalTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				Decide(env.newCheck(tb, tt.id, tt.control), tt.p, tt.in, "observed", nil)
			}()
			<-done
			require.NoError(t, w.Close())
			if tt.fatal != "" {
				assert.Contains(t, tb.fatal, tt.fatal)
				_, err := evidence.Load(dir)
				assert.ErrorIs(t, err, evidence.ErrNoEvidence, "nothing is recorded")
				return
			}
			require.Empty(t, tb.fatal)
			set, err := evidence.Load(dir)
			require.NoError(t, err)
			require.Len(t, set.Records, 1)
			r := set.Records[0]
			assert.Equal(t, tt.want, r.Outcome)
			assert.Equal(t, tt.p.Name(), r.Predicate)
			assert.Equal(t, tt.control, r.Control)
		})
	}
}

// TestHostProbe: a measured check carries the host probe in its metrics and
// detail; a check that measured nothing does not.
func TestHostProbe(t *testing.T) {
	dir := t.TempDir()
	w, err := evidence.Create(dir, "x")
	require.NoError(t, err)
	env := &Env{PkgPath: "./x", evidence: w}
	metrics := map[string]float64{"step_ms_p50": 9}
	measured := env.newCheck(t, "PF-01.activity-latency", false)
	measured.HostProbe(calibrate.Series{})
	measured.Pass("observed", metrics)
	skipped := env.newCheck(t, "PF-01.under-load", false)
	skipped.HostProbe(calibrate.Series{})
	skipped.NotMeasured("no server")
	require.NoError(t, w.Close())
	assert.Equal(t, map[string]float64{"step_ms_p50": 9}, metrics, "the caller's metrics stay as they were")

	set, err := evidence.Load(dir)
	require.NoError(t, err)
	require.Len(t, set.Records, 2)
	r := set.Records[0]
	assert.True(t, strings.HasPrefix(r.Detail, "observed; host probe before and after the series: CPU "), r.Detail)
	assert.Equal(t, 9.0, r.Metrics["step_ms_p50"])
	for _, name := range []string{"probe_cpu_ms_p50", "probe_cpu_ms_p50_lo", "probe_cpu_ms_p50_hi", "probe_fsync_ms_p50"} {
		assert.Contains(t, r.Metrics, name)
	}
	assert.Equal(t, "no server", set.Records[1].Detail)
	assert.Empty(t, set.Records[1].Metrics)
}
