package stats

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// streams is the starts of limiters that each start one job a second, the
// k-th offset by k*offset, the i-th running jobs[i] jobs.
func streams(offset time.Duration, jobs ...int) []time.Time {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []time.Time
	for k, n := range jobs {
		for j := range n {
			out = append(out, t0.Add(time.Duration(j)*time.Second+time.Duration(k)*offset))
		}
	}
	return out
}

func TestDrainRate(t *testing.T) {
	bunched := streams(30*time.Millisecond, 30, 30, 30, 30)
	burst := append(streams(100*time.Millisecond, 30, 30, 30, 30), streams(10*time.Millisecond, 1, 1, 1, 1)...)
	for _, tc := range []struct {
		name           string
		starts         []time.Time
		window, first  int
		rate, lo, hi   float64
		tailBelowLimit bool
	}{
		// Four partitions at 1/s each, started 30 ms apart: the gaps are 30,
		// 30, 30 and 910 ms, yet every second holds exactly four starts.
		{name: "four 1/s limiters in bunches", starts: bunched, window: 14, first: 4, rate: 4, lo: 4, hi: 4},
		{name: "a first second with a burst of 4 on top", starts: burst, window: 13, first: 8, rate: 4, lo: 4, hi: 4},
		// One partition received 6 jobs of 96, under the eighth the window
		// assumes: it runs dry at 6 s, before the middle start (14 s), so
		// the window holds eight seconds of 3/s.
		{name: "a partition run dry inside the window", starts: streams(100*time.Millisecond, 6, 30, 30, 30), window: 13, first: 4, rate: 44.0 / 13, lo: 3.15, hi: 3.69, tailBelowLimit: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shuffled := slices.Clone(tc.starts)
			slices.Reverse(shuffled)
			d := DrainRate(shuffled)
			assert.Equal(t, tc.window, d.Window)
			assert.Equal(t, tc.first, d.PerSecond[0])
			assert.InDelta(t, tc.rate, d.Rate, 0.01)
			assert.InDelta(t, tc.lo, d.Lo, 0.01)
			assert.InDelta(t, tc.hi, d.Hi, 0.01)
			assert.Equal(t, tc.tailBelowLimit, d.Tail < 3.5, "tail %.2f/s", d.Tail)
		})
	}
	assert.Zero(t, DrainRate(streams(0, 1)), "one start is no rate")
}
