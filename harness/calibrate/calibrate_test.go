package calibrate

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRun runs the probe once (under a second on the reference machine). It
// asserts what a probe holds, never how long it took.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	p, err := Run(t.Context(), dir)
	require.NoError(t, err)
	t.Logf("CPU pass median %.1f ms [%.1f, %.1f], fsync median %.2f ms [%.2f, %.2f]", p.CPU.P50, p.CPU.P50Lo, p.CPU.P50Hi, p.Fsync.P50, p.Fsync.P50Lo, p.Fsync.P50Hi)
	assert.Equal(t, cpuSamples, p.CPU.N)
	assert.Equal(t, fsyncSamples, p.Fsync.N)
	assert.Positive(t, p.CPU.P50)
	assert.LessOrEqual(t, p.CPU.P50Lo, p.CPU.P50Hi)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "the fsync probe removes its file")
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dir := t.TempDir()
	tests := []struct {
		name string
		run  func() error
	}{
		{"CPU", func() error { _, err := CPU(ctx); return err }},
		{"Fsync", func() error { _, err := Fsync(ctx, dir); return err }},
		{"Run", func() error { _, err := Run(ctx, dir); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			require.ErrorIs(t, err, context.Canceled)
			assert.ErrorContains(t, err, "after 0 of")
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, entries, "the fsync probe removes its file when cancelled")
		})
	}
}

// A deadline that passes during the CPU probe ends it at the next pass.
func TestDeadlineDuringCPU(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond) // shorter than one pass
	defer cancel()
	_, err := CPU(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestFsyncMissingDir(t *testing.T) {
	_, err := Fsync(t.Context(), filepath.Join(t.TempDir(), "missing"))
	require.ErrorContains(t, err, "calibrate: fsync probe")
}

func TestSeries(t *testing.T) {
	before, after := newProbe([]float64{30, 31, 32}, []float64{1, 1}), newProbe([]float64{40, 41}, []float64{2, 2, 2})
	s := Series{Before: before, After: after}
	m := s.Metrics()
	assert.Equal(t, 5.0, m["probe_cpu_ms_n"], "one probe over both")
	assert.Equal(t, 5.0, m["probe_fsync_ms_n"])
	assert.Equal(t, 32.0, m["probe_cpu_ms_p50"])
	assert.Equal(t, []float64{30, 31, 32}, before.cpu, "pooling leaves its inputs alone")
	assert.Equal(t, "host probe before and after the series: CPU 32.0 ms [30.0, 41.0] per pass (31.0 before, 40.0 after), "+
		"fsync 2.00 ms [1.00, 2.00] per 4 KiB write (1.00 before, 2.00 after)", s.String())
}

func TestMetrics(t *testing.T) {
	m := newProbe([]float64{30, 31, 32}, []float64{1, 2, 3}).Metrics()
	assert.Equal(t, []string{
		"probe_cpu_ms_n", "probe_cpu_ms_p50", "probe_cpu_ms_p50_hi", "probe_cpu_ms_p50_lo",
		"probe_fsync_ms_n", "probe_fsync_ms_p50", "probe_fsync_ms_p50_hi", "probe_fsync_ms_p50_lo",
	}, slices.Sorted(maps.Keys(m)))
	assert.Equal(t, 31.0, m["probe_cpu_ms_p50"])
	assert.Equal(t, 3.0, m["probe_fsync_ms_n"])
}
