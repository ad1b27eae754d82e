// Package wf measures the workflow-primitive items (WF-01..WF-06): step
// definition, child workflows, fan-out, loops, timers and schedules, and
// queues with rate control. Its tests run real workflows against the dev
// server (timers of days run in the SDK's time-skipping environment); the
// server and workers are killed for real where a check needs it.
//
// The workflows and activities of each item live in a file named for it
// (steps.go, children.go, fanout.go, loops.go, timers.go, queues.go); this
// file holds what several of them share.
package wf

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/durabench/durabench/harness/ledger"
)

// Probe records, in the test process, each activity execution a test looks
// at: its tag, attempt, when it began and ended, whether it saw a
// cancellation, and how many executions ran at once.
type Probe struct {
	mu       sync.Mutex
	inflight int
	max      int
	runs     []Run
}

// Run is one activity execution seen by a Probe.
type Run struct {
	Tag       string
	Attempt   int32
	Start     time.Time
	End       time.Time // zero while running
	Cancelled bool      // the activity observed its context being cancelled
}

// begin records the start of an execution and returns its index for end.
func (p *Probe) begin(tag string, attempt int32) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight++
	p.max = max(p.max, p.inflight)
	p.runs = append(p.runs, Run{Tag: tag, Attempt: attempt, Start: time.Now()})
	return len(p.runs) - 1
}

// end records the end of execution i.
func (p *Probe) end(i int, cancelled bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight--
	p.runs[i].End, p.runs[i].Cancelled = time.Now(), cancelled
}

// Runs returns a copy of the executions in start order.
func (p *Probe) Runs() []Run {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Run(nil), p.runs...)
}

// MaxInFlight is the largest number of executions that ran at once.
func (p *Probe) MaxInFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max
}

// work is the body of a simulated step: it takes d (the work itself),
// heartbeating every 100ms when heartbeat is set so that a cancellation
// reaches it, and returns the context's error if cancelled first.
func work(ctx context.Context, d time.Duration, heartbeat bool) error {
	done := time.NewTimer(d)
	defer done.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done.C:
			return nil
		case <-tick.C:
			if heartbeat {
				activity.RecordHeartbeat(ctx)
			}
		}
	}
}

// appendLedger writes one ledger entry for the current activity when path is
// set (workers in child processes record their side effects there).
func appendLedger(ctx context.Context, path string, step int, phase string) error {
	if path == "" {
		return nil
	}
	info := activity.GetInfo(ctx)
	return ledger.Append(path, ledger.Entry{Key: info.WorkflowExecution.ID, Step: step, Attempt: info.Attempt, Phase: phase})
}
