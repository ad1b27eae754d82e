package op

import (
	"errors"
	"slices"
	"time"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of OP-04's checks.

func scalePredicates() []predicate.Spec {
	return []predicate.Spec{
		shareQueuePredicate.Spec(), speedupPredicate.Spec(), joinLeavePredicate.Spec(), backpressurePredicate.Spec(),
		shardsPredicate.Spec(), tenKPredicate.Spec(), backlogSignalPredicate.Spec(),
	}
}

// shareQueue is a batch of workflows run by worker processes polling one
// task queue (OP-04.workers-share-queue).
type shareQueue struct {
	workers   []int       // pids of the worker processes started
	byPID     map[int]int // activities run, by the pid that ran them
	want      int         // workflows started
	completed int
	err       error // the first failure
}

// bothWorkersServed: every workflow completed, every worker process ran at
// least one activity, and no other process ran any.
func bothWorkersServed(o shareQueue) bool {
	if o.err != nil || o.want == 0 || o.completed != o.want || len(o.workers) < 2 {
		return false
	}
	total := 0
	for pid, n := range o.byPID {
		total += n
		if !slices.Contains(o.workers, pid) {
			return false
		}
	}
	for _, pid := range o.workers {
		if o.byPID[pid] == 0 {
			return false
		}
	}
	return total == o.completed
}

var shareQueuePredicate = predicate.New("OP-04.workers-share-queue", "bothWorkersServed", bothWorkersServed,
	predicate.Case[shareQueue]{Name: "300 workflows, 152 and 148 activities per worker",
		In: shareQueue{workers: []int{10, 11}, byPID: map[int]int{10: 152, 11: 148}, want: 300, completed: 300}, Want: true},
	predicate.Case[shareQueue]{Name: "the second worker never got a task",
		In: shareQueue{workers: []int{10, 11}, byPID: map[int]int{10: 300}, want: 300, completed: 300}, Want: false},
	predicate.Case[shareQueue]{Name: "some workflows failed",
		In: shareQueue{workers: []int{10, 11}, byPID: map[int]int{10: 150, 11: 140}, want: 300, completed: 290, err: errors.New("activity timeout")}, Want: false},
	predicate.Case[shareQueue]{Name: "a process the test did not start ran tasks",
		In: shareQueue{workers: []int{10, 11}, byPID: map[int]int{10: 100, 11: 100, 99: 100}, want: 300, completed: 300}, Want: false},
)

// scaleMinSpeedup is the catalog's bound for OP-04.throughput-scales: two
// workers finish a slot-bound workload at least 1.6× faster than one.
const scaleMinSpeedup = 1.6

// speedup is the ratio of one worker's time to two workers' time on the same
// slot-bound workload, per round, summarised (OP-04.throughput-scales).
type speedup struct {
	rounds   int
	p50      float64 // median per-round ratio
	lo, hi   float64 // its bootstrap 95% interval
	failures int     // workflows that failed in any round
	oneBusy  bool    // the single worker ran every activity of its rounds
	twoBusy  bool    // both workers of the pair ran activities in every round
}

// twoWorkersFaster: enough rounds, nothing failed, the workload really ran
// on one worker and on two, and the lower bound of the median ratio's 95%
// interval is at least scaleMinSpeedup (judged on the interval, since this
// is a timing check).
func twoWorkersFaster(o speedup) bool {
	return o.rounds >= 5 && o.failures == 0 && o.oneBusy && o.twoBusy && o.lo >= scaleMinSpeedup
}

var speedupPredicate = predicate.New("OP-04.throughput-scales", "twoWorkersFaster", twoWorkersFaster,
	predicate.Case[speedup]{Name: "1.9× with interval [1.8, 1.95]",
		In: speedup{rounds: 8, p50: 1.9, lo: 1.8, hi: 1.95, oneBusy: true, twoBusy: true}, Want: true},
	predicate.Case[speedup]{Name: "server-bound: no gain from the second worker",
		In: speedup{rounds: 8, p50: 1.02, lo: 0.95, hi: 1.1, oneBusy: true, twoBusy: true}, Want: false},
	predicate.Case[speedup]{Name: "median above the bound, interval reaching below it",
		In: speedup{rounds: 8, p50: 1.7, lo: 1.45, hi: 1.9, oneBusy: true, twoBusy: true}, Want: false},
	predicate.Case[speedup]{Name: "the second worker never ran anything",
		In: speedup{rounds: 8, p50: 1.9, lo: 1.8, hi: 1.95, oneBusy: true}, Want: false},
)

// joinLeave is a run of jobs during which a worker joined and another was
// stopped (OP-04.worker-join-leave).
type joinLeave struct {
	jobs             int
	completed        int            // runs that completed with a result
	execs            map[string]int // executions (ledger starts) per job
	joinerJobs       int            // jobs the joining worker ran
	leaverJobs       int            // jobs the leaving worker ran
	leaverUnfinished int            // jobs the leaving worker began and did not finish
	afterLeave       int            // jobs begun after the leaving worker's process ended
	leaverExited     bool           // the leaving worker's process ended
	failedTasks      int            // failed or timed-out activity and workflow tasks in history
	stickyReleases   int            // sticky workflow tasks that timed out schedule-to-start (the release of a leaving worker's work; not judged)
	maxAttempt       int32          // highest activity attempt
	err              error          // the first failed run
}

// joinedAndLeftCleanly: the joining worker took jobs; the leaving worker had
// taken jobs, finished every one it began and exited while jobs remained,
// which others then ran; no task failed or timed out; and every job ran
// exactly once and completed.
func joinedAndLeftCleanly(o joinLeave) bool {
	if o.err != nil || o.jobs == 0 || o.completed != o.jobs || len(o.execs) != o.jobs || o.joinerJobs == 0 ||
		o.leaverJobs == 0 || o.leaverUnfinished != 0 || !o.leaverExited || o.afterLeave == 0 || o.failedTasks != 0 || o.maxAttempt != 1 {
		return false
	}
	for _, n := range o.execs {
		if n != 1 {
			return false
		}
	}
	return true
}

func scaleJobExecs(n, each int) map[string]int {
	m := map[string]int{}
	for i := range n {
		m[string(rune('a'+i))] = each
	}
	return m
}

var joinLeavePredicate = predicate.New("OP-04.worker-join-leave", "joinedAndLeftCleanly", joinedAndLeftCleanly,
	predicate.Case[joinLeave]{Name: "joiner ran 9, leaver 3, 5 begun after the leaver exited",
		In: joinLeave{jobs: 12, completed: 12, execs: scaleJobExecs(12, 1), joinerJobs: 9, leaverJobs: 3, afterLeave: 5, leaverExited: true, maxAttempt: 1}, Want: true},
	predicate.Case[joinLeave]{Name: "stopping the worker lost its tasks: timeouts, second attempts",
		In: joinLeave{jobs: 12, completed: 10, execs: scaleJobExecs(12, 1), joinerJobs: 9, leaverJobs: 3, leaverUnfinished: 2, afterLeave: 5, leaverExited: true,
			failedTasks: 2, maxAttempt: 2, err: errors.New("activity StartToClose timeout")}, Want: false},
	predicate.Case[joinLeave]{Name: "the joining worker never got a task",
		In: joinLeave{jobs: 12, completed: 12, execs: scaleJobExecs(12, 1), leaverJobs: 12, leaverExited: true, maxAttempt: 1}, Want: false},
	predicate.Case[joinLeave]{Name: "a job ran twice",
		In: joinLeave{jobs: 12, completed: 12, execs: scaleJobExecs(12, 2), joinerJobs: 9, leaverJobs: 3, afterLeave: 5, leaverExited: true, maxAttempt: 1}, Want: false},
	predicate.Case[joinLeave]{Name: "the stopped worker never exited",
		In: joinLeave{jobs: 12, completed: 12, execs: scaleJobExecs(12, 1), joinerJobs: 9, leaverJobs: 3, maxAttempt: 1}, Want: false},
)

// backpressure is a run of more jobs than a saturated worker's slots can
// take at once (OP-04.backpressure).
type backpressure struct {
	latency     time.Duration // each job's fixed latency
	backlogPeak int64         // highest ApproximateBacklogCount sampled while saturated
	s2sFirst    time.Duration // shortest schedule-to-start latency (a free slot)
	s2sMax      time.Duration // longest
	jobs        int
	completed   int
	lost        int // jobs whose activity never ran or whose run did not complete
}

// absorbedSaturation: while saturated the server reported a backlog and
// tasks waited in the queue — the longest schedule-to-start at least one
// job latency (a task queued behind a busy slot waits for one to free),
// the shortest below it — and every job ran and completed once capacity
// returned.
func absorbedSaturation(o backpressure) bool {
	return o.jobs > 0 && o.backlogPeak > 0 && o.s2sFirst < o.latency && o.s2sMax >= o.latency &&
		o.completed == o.jobs && o.lost == 0
}

var backpressurePredicate = predicate.New("OP-04.backpressure", "absorbedSaturation", absorbedSaturation,
	predicate.Case[backpressure]{Name: "backlog 30, waits from 5 ms to 4 s, all 60 completed",
		In: backpressure{latency: 250 * time.Millisecond, backlogPeak: 30, s2sFirst: 5 * time.Millisecond, s2sMax: 4 * time.Second, jobs: 60, completed: 60}, Want: true},
	predicate.Case[backpressure]{Name: "tasks dropped under saturation",
		In: backpressure{latency: 250 * time.Millisecond, backlogPeak: 30, s2sFirst: 5 * time.Millisecond, s2sMax: 4 * time.Second, jobs: 60, completed: 52, lost: 8}, Want: false},
	predicate.Case[backpressure]{Name: "no backlog ever reported",
		In: backpressure{latency: 250 * time.Millisecond, s2sFirst: 5 * time.Millisecond, s2sMax: 4 * time.Second, jobs: 60, completed: 60}, Want: false},
	predicate.Case[backpressure]{Name: "never saturated: no task waited",
		In: backpressure{latency: 250 * time.Millisecond, backlogPeak: 1, s2sFirst: 5 * time.Millisecond, s2sMax: 20 * time.Millisecond, jobs: 60, completed: 60}, Want: false},
)

// shardRun is one dedicated server's run of the same workload.
type shardRun struct {
	shards    int           // the server's history shards (what it announced)
	byShard   map[int32]int // workflows per shard id, as the server describes them
	want      int
	completed int
	rate      float64 // workflows per second
}

// shardSpread compares a 1-shard and a 4-shard server
// (OP-04.history-shards).
type shardSpread struct {
	one, four shardRun
}

// spreadAcrossShards: both servers completed every workflow with a
// throughput measured; the 1-shard server kept them all on shard 1 and the
// 4-shard server used every one of its shards.
func spreadAcrossShards(o shardSpread) bool {
	ok := func(r shardRun) bool {
		n := 0
		for id, c := range r.byShard {
			if id < 1 || int(id) > r.shards {
				return false
			}
			n += c
		}
		return r.want > 0 && r.completed == r.want && n == r.want && r.rate > 0 && len(r.byShard) == r.shards
	}
	return o.one.shards == 1 && o.four.shards == 4 && ok(o.one) && ok(o.four)
}

var shardsPredicate = predicate.New("OP-04.history-shards", "spreadAcrossShards", spreadAcrossShards,
	predicate.Case[shardSpread]{Name: "1 shard holds 150; 4 shards hold 41/35/38/36",
		In: shardSpread{one: shardRun{shards: 1, byShard: map[int32]int{1: 150}, want: 150, completed: 150, rate: 20},
			four: shardRun{shards: 4, byShard: map[int32]int{1: 41, 2: 35, 3: 38, 4: 36}, want: 150, completed: 150, rate: 22}}, Want: true},
	predicate.Case[shardSpread]{Name: "the setting ignored: every workflow on shard 1",
		In: shardSpread{one: shardRun{shards: 1, byShard: map[int32]int{1: 150}, want: 150, completed: 150, rate: 20},
			four: shardRun{shards: 4, byShard: map[int32]int{1: 150}, want: 150, completed: 150, rate: 22}}, Want: false},
	predicate.Case[shardSpread]{Name: "the 4-shard server failed workflows",
		In: shardSpread{one: shardRun{shards: 1, byShard: map[int32]int{1: 150}, want: 150, completed: 150, rate: 20},
			four: shardRun{shards: 4, byShard: map[int32]int{1: 30, 2: 30, 3: 30, 4: 30}, want: 150, completed: 120, rate: 22}}, Want: false},
)

// scaleConcurrent is the catalog's number of concurrently open workflows
// (OP-04.concurrent-10k).
const scaleConcurrent = 10000

// tenK is a run of scaleConcurrent workflows held open at once
// (OP-04.concurrent-10k).
type tenK struct {
	want       int
	started    int
	running    int64 // Running on the task queue by a count query, all at once
	completed  int64 // Completed by a count query at the end
	startP95   time.Duration
	rssPeakKiB int64 // the server's VmHWM
	err        error // the first failed start
}

// tenKOpenAndDone: every start succeeded, a count query saw all of them
// Running at the same time, all completed, and the start latency p95 and the
// server's memory were measured.
func tenKOpenAndDone(o tenK) bool {
	return o.err == nil && o.want >= scaleConcurrent && o.started == o.want && o.running == int64(o.want) &&
		o.completed == int64(o.want) && o.startP95 > 0 && o.rssPeakKiB > 0
}

var tenKPredicate = predicate.New("OP-04.concurrent-10k", "tenKOpenAndDone", tenKOpenAndDone,
	predicate.Case[tenK]{Name: "10,000 running at once, all completed",
		In: tenK{want: 10000, started: 10000, running: 10000, completed: 10000, startP95: 40 * time.Millisecond, rssPeakKiB: 600000}, Want: true},
	predicate.Case[tenK]{Name: "starts refused past a limit",
		In: tenK{want: 10000, started: 8000, running: 8000, completed: 8000, startP95: 40 * time.Millisecond, rssPeakKiB: 600000,
			err: errors.New("resource exhausted")}, Want: false},
	predicate.Case[tenK]{Name: "some never completed",
		In: tenK{want: 10000, started: 10000, running: 10000, completed: 9990, startP95: 40 * time.Millisecond, rssPeakKiB: 600000}, Want: false},
	predicate.Case[tenK]{Name: "a smaller run does not count",
		In: tenK{want: 1000, started: 1000, running: 1000, completed: 1000, startP95: 40 * time.Millisecond, rssPeakKiB: 600000}, Want: false},
)

// scaleBacklogTolerance is the catalog's bound for OP-04.backlog-signal: the
// approximate backlog count tracks the real backlog within 10%.
const scaleBacklogTolerance = 0.10

// backlogLevel is the real backlog and the count the server reported for it.
type backlogLevel struct {
	real, reported int64
	settled        bool // the reading came within the deadline
}

// backlogSignal is the approximate backlog read at known backlogs
// (OP-04.backlog-signal).
type backlogSignal struct {
	levels  []backlogLevel // the backlog built up
	drained backlogLevel   // after the worker drained it (real 0)
}

// backlogTracks: at every known backlog the reported count is within
// scaleBacklogTolerance of it, and it falls to 0 once the backlog is drained.
func backlogTracks(o backlogSignal) bool {
	if len(o.levels) == 0 || !o.drained.settled || o.drained.real != 0 || o.drained.reported != 0 {
		return false
	}
	for _, l := range o.levels {
		if !l.settled || l.real <= 0 || float64(scaleAbs(l.reported-l.real)) > scaleBacklogTolerance*float64(l.real) {
			return false
		}
	}
	return true
}

func scaleAbs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

var backlogSignalPredicate = predicate.New("OP-04.backlog-signal", "backlogTracks", backlogTracks,
	predicate.Case[backlogSignal]{Name: "200 reported as 200, 0 after draining",
		In: backlogSignal{levels: []backlogLevel{{real: 200, reported: 200, settled: true}}, drained: backlogLevel{settled: true}}, Want: true},
	predicate.Case[backlogSignal]{Name: "within 10%: 200 reported as 185",
		In: backlogSignal{levels: []backlogLevel{{real: 200, reported: 185, settled: true}}, drained: backlogLevel{settled: true}}, Want: true},
	predicate.Case[backlogSignal]{Name: "counts only one partition: 200 reported as 50",
		In: backlogSignal{levels: []backlogLevel{{real: 200, reported: 50}}, drained: backlogLevel{settled: true}}, Want: false},
	predicate.Case[backlogSignal]{Name: "never falls after draining",
		In: backlogSignal{levels: []backlogLevel{{real: 200, reported: 200, settled: true}}, drained: backlogLevel{reported: 200}}, Want: false},
)
