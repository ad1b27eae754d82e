package wf

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/workflow"
)

// loops names the Loops activities in workflow code.
var loops *Loops

// Loops holds WF-04's activities.
type Loops struct {
	mu    sync.Mutex
	polls map[string]int // CheckStatus calls per workflow id
}

// Classify decides which branch an amount takes.
func (l *Loops) Classify(_ context.Context, amount int) (string, error) {
	if amount < 1000 {
		return "approve", nil
	}
	return "review", nil
}

// Approve is the branch for small amounts.
func (l *Loops) Approve(_ context.Context, amount int) (string, error) { return "approved", nil }

// Review is the branch for large amounts.
func (l *Loops) Review(_ context.Context, amount int) (string, error) { return "sent to review", nil }

// CheckStatus reports "ready" on the readyAt-th call for a workflow, "pending" before.
func (l *Loops) CheckStatus(ctx context.Context, readyAt int) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.polls == nil {
		l.polls = map[string]int{}
	}
	id := activity.GetInfo(ctx).WorkflowExecution.ID
	l.polls[id]++
	if l.polls[id] >= readyAt {
		return "ready", nil
	}
	return "pending", nil
}

// Tick does nothing; a loop calls it to end a workflow task.
func (l *Loops) Tick(context.Context) error { return nil }

var loopOptions = workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second}

// BranchWorkflow runs only the branch that the classification chose.
func BranchWorkflow(ctx workflow.Context, amount int) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, loopOptions)
	var class, out string
	if err := workflow.ExecuteActivity(ctx, loops.Classify, amount).Get(ctx, &class); err != nil {
		return "", err
	}
	if class == "approve" {
		err := workflow.ExecuteActivity(ctx, loops.Approve, amount).Get(ctx, &out)
		return out, err
	}
	err := workflow.ExecuteActivity(ctx, loops.Review, amount).Get(ctx, &out)
	return out, err
}

// PollInput configures PollWorkflow.
type PollInput struct {
	ReadyAt  int           // the status is ready on this call
	Interval time.Duration // durable sleep between calls
	Max      int           // give up after this many calls
}

// PollWorkflow calls CheckStatus until it says ready, sleeping on a durable
// timer between calls; it returns the number of calls.
func PollWorkflow(ctx workflow.Context, in PollInput) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, loopOptions)
	for calls := 1; calls <= in.Max; calls++ {
		var s string
		if err := workflow.ExecuteActivity(ctx, loops.CheckStatus, in.ReadyAt).Get(ctx, &s); err != nil {
			return calls, err
		}
		if s == "ready" {
			return calls, nil
		}
		if err := workflow.Sleep(ctx, in.Interval); err != nil {
			return calls, err
		}
	}
	return in.Max, errors.New("status never became ready")
}

// CounterState is carried from run to run by CounterWorkflow.
type CounterState struct {
	Total  int // iterations to do in all
	PerRun int // iterations per run before continuing as new
	Iter   int // iterations done
	Sum    int // sum of the values the iterations recorded
	Runs   int // runs so far, this one included
}

// CounterWorkflow loops Total times; each iteration records a value with
// SideEffect (one history event). Every PerRun iterations it continues as
// new, carrying its state.
func CounterWorkflow(ctx workflow.Context, st CounterState) (CounterState, error) {
	st.Runs++
	for i := 0; i < st.PerRun && st.Iter < st.Total; i++ {
		next := st.Iter + 1
		var v int
		if err := workflow.SideEffect(ctx, func(workflow.Context) any { return next }).Get(&v); err != nil {
			return st, err
		}
		st.Sum += v
		st.Iter++
	}
	if st.Iter < st.Total {
		return st, workflow.NewContinueAsNewError(ctx, CounterWorkflow, st)
	}
	return st, nil
}

// itemSignal carries one numbered item to DrainWorkflow.
const itemSignal = "item"

// DrainState is carried from run to run by DrainWorkflow.
type DrainState struct {
	Expected int   // items to receive in all
	PerRun   int   // items handled per run before continuing as new
	Seen     []int // items received, in order
	Drained  int   // items taken from the channel just before continuing as new
	Runs     int
}

// DrainWorkflow receives numbered items by signal. After PerRun items it
// drains whatever has already arrived into its state and continues as new,
// so that no signal is left behind in the closing run.
func DrainWorkflow(ctx workflow.Context, st DrainState) (DrainState, error) {
	st.Runs++
	if err := workflow.SetQueryHandler(ctx, "seen", func() (int, error) { return len(st.Seen), nil }); err != nil {
		return st, err
	}
	ch := workflow.GetSignalChannel(ctx, itemSignal)
	for handled := 0; handled < st.PerRun && len(st.Seen) < st.Expected; handled++ {
		var v int
		ch.Receive(ctx, &v)
		st.Seen = append(st.Seen, v)
	}
	for {
		var v int
		if !ch.ReceiveAsync(&v) {
			break
		}
		st.Seen = append(st.Seen, v)
		st.Drained++
	}
	if len(st.Seen) >= st.Expected {
		return st, nil
	}
	return st, workflow.NewContinueAsNewError(ctx, DrainWorkflow, st)
}

// SuggestState is carried by SuggestWorkflow into its next run.
type SuggestState struct {
	Run        int      // 0 in the first run
	Iterations int      // loop iterations before the suggestion came
	Length     int      // history length when it came
	Size       int      // history size in bytes when it came
	Reasons    []string // the reasons the engine gave
}

// SuggestWorkflow loops (each iteration records 200 SideEffect markers and
// calls a no-op activity, so that each iteration ends in a new workflow task
// that carries the engine's suggestion) until the engine suggests continuing
// as new, then does so once. It has no iteration count of its own other than
// a safety limit.
func SuggestWorkflow(ctx workflow.Context, st SuggestState) (SuggestState, error) {
	if st.Run > 0 {
		return st, nil
	}
	ctx = workflow.WithActivityOptions(ctx, loopOptions)
	const safetyLimit = 200
	for i := 1; i <= safetyLimit; i++ {
		for range 200 {
			var v int
			if err := workflow.SideEffect(ctx, func(workflow.Context) any { return i }).Get(&v); err != nil {
				return st, err
			}
		}
		if err := workflow.ExecuteActivity(ctx, loops.Tick).Get(ctx, nil); err != nil {
			return st, err
		}
		info := workflow.GetInfo(ctx)
		if info.GetContinueAsNewSuggested() {
			st.Run, st.Iterations = 1, i
			st.Length, st.Size = info.GetCurrentHistoryLength(), info.GetCurrentHistorySize()
			for _, r := range info.GetContinueAsNewSuggestedReasons() {
				st.Reasons = append(st.Reasons, suggestReason(r))
			}
			return st, workflow.NewContinueAsNewError(ctx, SuggestWorkflow, st)
		}
	}
	return st, errors.New("the engine never suggested continue-as-new")
}

// Handler names of HandlersWorkflow.
const (
	workUpdate     = "work"
	rolloverSignal = "rollover"
)

// HandlersWorkflow serves "work" updates, each of which takes a 300ms
// durable timer. On a "rollover" signal it waits until every handler has
// finished and continues as new; the next run returns how many the first served.
func HandlersWorkflow(ctx workflow.Context, served int, next bool) (int, error) {
	if next {
		return served, nil
	}
	if err := workflow.SetUpdateHandler(ctx, workUpdate, func(ctx workflow.Context, n int) (int, error) {
		if err := workflow.Sleep(ctx, 300*time.Millisecond); err != nil {
			return 0, err
		}
		served++
		return 10 * n, nil
	}); err != nil {
		return 0, err
	}
	workflow.GetSignalChannel(ctx, rolloverSignal).Receive(ctx, nil)
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return served, err
	}
	return served, workflow.NewContinueAsNewError(ctx, HandlersWorkflow, served, true)
}

func suggestReason(r workflow.ContinueAsNewSuggestedReason) string {
	switch r {
	case workflow.ContinueAsNewSuggestedReasonHistorySizeTooLarge:
		return "history size too large"
	case workflow.ContinueAsNewSuggestedReasonTooManyHistoryEvents:
		return "too many history events"
	case workflow.ContinueAsNewSuggestedReasonTooManyUpdates:
		return "too many updates"
	}
	return fmt.Sprintf("reason %d", int(r))
}
