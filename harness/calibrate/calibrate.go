// Package calibrate times a fixed workload on the host, so that a timing
// measured on a shared machine comes with a measure of how fast the machine
// itself was meanwhile. On the reference machine there are stretches where
// every timing is slower with no change to the code; CPU steal explains some
// of them, not all. The same CPU work and the same fsyncs, timed next to a
// PF series and recorded in its evidence, let a baseline comparison tell a
// slower host (the probe slowed too) from a slower platform (it did not).
//
// The probe measures the host, never the platform: its figures decide no
// check's outcome.
package calibrate

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"time"

	"github.com/durabench/durabench/harness/stats"
)

// The workload is fixed so that probes of different runs compare: change it
// and the probes in a committed baseline no longer compare with new ones
// (refresh the baseline). On the reference machine (2 cores, SHA
// instructions, while another benchmark ran) the median CPU pass took 31.7
// to 39.3 ms over eight probes and the median 4 KiB write and fsync 0.19 to
// 1.17 ms over nine, so a probe takes under a second.
const (
	cpuBuffer    = 1 << 20 // bytes hashed per SHA-256 call
	cpuHashes    = 48      // SHA-256 calls per CPU pass
	cpuSamples   = 15
	fsyncBlock   = 4 << 10
	fsyncSamples = 50
)

// Metric name prefixes, each recorded as PREFIX_n, PREFIX_p50 and the
// median's bootstrap 95% interval PREFIX_p50_lo and PREFIX_p50_hi.
const (
	CPUMetric   = "probe_cpu_ms"
	FsyncMetric = "probe_fsync_ms"
)

// CPU times cpuSamples passes of a fixed CPU workload (SHA-256 over a fixed
// buffer, on one goroutine) and returns each pass's duration in
// milliseconds. ctx is checked between passes.
func CPU(ctx context.Context) ([]float64, error) {
	buf := make([]byte, cpuBuffer)
	for i := range buf {
		buf[i] = byte(i * 131) // fixed content, not all zeros
	}
	xs := make([]float64, 0, cpuSamples)
	for range cpuSamples {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("calibrate: CPU probe after %d of %d passes: %w", len(xs), cpuSamples, err)
		}
		start := time.Now()
		for range cpuHashes {
			sha256.Sum256(buf)
		}
		xs = append(xs, ms(time.Since(start)))
	}
	return xs, nil
}

// Fsync appends fsyncSamples blocks of 4 KiB to a new file in dir, each
// followed by an fsync, and returns each write and fsync's duration in
// milliseconds; the file is removed. dir should be on the disk whose speed
// matters (the server's database). ctx is checked between writes.
func Fsync(ctx context.Context, dir string) (_ []float64, err error) {
	f, err := os.CreateTemp(dir, "durabench-probe-*")
	if err != nil {
		return nil, fmt.Errorf("calibrate: fsync probe: %w", err)
	}
	defer func() {
		cerr := f.Close()
		rerr := os.Remove(f.Name())
		if err == nil && cerr != nil {
			err = fmt.Errorf("calibrate: fsync probe: %w", cerr)
		}
		if err == nil && rerr != nil {
			err = fmt.Errorf("calibrate: fsync probe: %w", rerr)
		}
	}()
	block := make([]byte, fsyncBlock)
	xs := make([]float64, 0, fsyncSamples)
	for range fsyncSamples {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("calibrate: fsync probe after %d of %d writes: %w", len(xs), fsyncSamples, err)
		}
		start := time.Now()
		if _, err := f.Write(block); err != nil {
			return nil, fmt.Errorf("calibrate: fsync probe: %w", err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("calibrate: fsync probe: %w", err)
		}
		xs = append(xs, ms(time.Since(start)))
	}
	return xs, nil
}

// Probe is what the probe measured: a summary of each workload's samples.
type Probe struct {
	CPU   stats.Summary // milliseconds per CPU pass
	Fsync stats.Summary // milliseconds per 4 KiB write and fsync
	cpu   []float64
	fsy   []float64
}

// Run times both workloads, the fsync one in dir.
func Run(ctx context.Context, dir string) (Probe, error) {
	cpu, err := CPU(ctx)
	if err != nil {
		return Probe{}, err
	}
	fsy, err := Fsync(ctx, dir)
	if err != nil {
		return Probe{}, err
	}
	return newProbe(cpu, fsy), nil
}

func newProbe(cpu, fsy []float64) Probe {
	return Probe{CPU: stats.Summarize(cpu), Fsync: stats.Summarize(fsy), cpu: cpu, fsy: fsy}
}

// pool is one probe over the samples of ps.
func pool(ps ...Probe) Probe {
	var cpu, fsy []float64
	for _, p := range ps {
		cpu, fsy = append(cpu, p.cpu...), append(fsy, p.fsy...)
	}
	return newProbe(cpu, fsy)
}

// Metrics are the probe's evidence metrics: for CPUMetric and FsyncMetric
// the sample count, the median and its 95% interval.
func (p Probe) Metrics() map[string]float64 {
	m := map[string]float64{}
	for prefix, s := range map[string]stats.Summary{CPUMetric: p.CPU, FsyncMetric: p.Fsync} {
		m[prefix+"_n"], m[prefix+"_p50"], m[prefix+"_p50_lo"], m[prefix+"_p50_hi"] = float64(s.N), s.P50, s.P50Lo, s.P50Hi
	}
	return m
}

// Series is the host probed right before a series of timings and right
// after it: a slow stretch that starts during the series shows in the
// second probe.
type Series struct{ Before, After Probe }

// Metrics are those of one probe over the samples of both.
func (s Series) Metrics() map[string]float64 { return pool(s.Before, s.After).Metrics() }

// String is the probe as a check's detail shows it: the pooled medians with
// their intervals, and the median of each probe.
func (s Series) String() string {
	p := pool(s.Before, s.After)
	return fmt.Sprintf("host probe before and after the series: CPU %.1f ms [%.1f, %.1f] per pass (%.1f before, %.1f after), fsync %.2f ms [%.2f, %.2f] per 4 KiB write (%.2f before, %.2f after)",
		p.CPU.P50, p.CPU.P50Lo, p.CPU.P50Hi, s.Before.CPU.P50, s.After.CPU.P50, p.Fsync.P50, p.Fsync.P50Lo, p.Fsync.P50Hi, s.Before.Fsync.P50, s.After.Fsync.P50)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
