package stats

import (
	"slices"
	"time"

	"gonum.org/v1/gonum/stat"
)

// Drain is the rate at which a backlog behind a rate limit was started,
// counted per whole second since the first start.
type Drain struct {
	PerSecond    []int   // starts in each second from the first start
	Window       int     // seconds 1..Window are judged (see DrainRate)
	Rate, Lo, Hi float64 // mean starts per judged second, and its bootstrap 95% interval
	AfterBurst   float64 // starts per second from the end of the first second to the last start
	Tail         float64 // starts per second after the judged seconds
}

// DrainRate counts starts (in any order) per second since the first and
// judges the seconds after the first, which holds a limiter's burst, up to
// the second in which the middle start fell.
//
// Counting per second, not timing gaps, is what measures a limit enforced
// per partition: the server divides a per-queue limit evenly among a task
// queue's read partitions (service/matching ratelimit_manager.go), so calls
// come from several limiters at once, in bunches and gaps whose mean gap
// has a wide interval, while each second still holds one share from each.
// Stopping at the middle start keeps the judged seconds to those in which
// every partition still held work: tasks land in partitions at random, so
// once one is empty the queue delivers less than its limit, and while half
// the backlog is still queued every partition holds work unless one
// received under an eighth of it (for a backlog of n over 4 partitions,
// binomial with mean n/4).
func DrainRate(starts []time.Time) Drain {
	var d Drain
	if len(starts) < 2 {
		return d
	}
	s := slices.SortedFunc(slices.Values(starts), time.Time.Compare)
	at := func(i int) float64 { return s[i].Sub(s[0]).Seconds() }
	last := at(len(s) - 1)
	d.PerSecond = make([]int, int(last)+1)
	for i := range s {
		d.PerSecond[int(at(i))]++
	}
	d.Window = min(int(at(len(s)/2)), len(d.PerSecond)) - 1
	if d.Window > 0 {
		judged := make([]float64, d.Window)
		for i := range judged {
			judged[i] = float64(d.PerSecond[i+1])
		}
		mean := func(xs []float64) float64 { return stat.Mean(xs, nil) }
		d.Rate = mean(judged)
		d.Lo, d.Hi = Bootstrap(judged, mean)
		startedBy := 0 // starts before the end of the window
		for _, c := range d.PerSecond[:d.Window+1] {
			startedBy += c
		}
		if rest := last - float64(d.Window+1); rest > 0 {
			d.Tail = float64(len(s)-startedBy) / rest
		}
	}
	if last > 1 {
		d.AfterBurst = float64(len(s)-d.PerSecond[0]) / (last - 1)
	}
	return d
}
