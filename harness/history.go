package harness

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// Context returns a context that ends after d or when the test ends.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// History returns every event of one run (runID empty: the latest run).
func History(ctx context.Context, c client.Client, id, runID string) ([]*historypb.HistoryEvent, error) {
	var out []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", id, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// EventsOf returns the events of type typ, in order.
func EventsOf(events []*historypb.HistoryEvent, typ enumspb.EventType) []*historypb.HistoryEvent {
	var out []*historypb.HistoryEvent
	for _, ev := range events {
		if ev.GetEventType() == typ {
			out = append(out, ev)
		}
	}
	return out
}

// EventCounts counts events by type.
func EventCounts(events []*historypb.HistoryEvent) map[enumspb.EventType]int {
	n := map[enumspb.EventType]int{}
	for _, ev := range events {
		n[ev.GetEventType()]++
	}
	return n
}

// AwaitResult waits for a run's result, asking again while the server is
// unreachable (a restart in progress); a NotFound or a workflow failure is
// returned at once.
func AwaitResult(ctx context.Context, run client.WorkflowRun, out any) error {
	for {
		err := run.Get(ctx, out)
		var nf *serviceerror.NotFound
		var wee *temporal.WorkflowExecutionError
		if err == nil || errors.As(err, &nf) || errors.As(err, &wee) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond): // backoff before asking again
		}
	}
}

// ShortID abbreviates a run id to its last 8 characters for details: run ids
// are UUIDv7, whose first characters are a timestamp shared by runs started
// together.
func ShortID(runID string) string {
	if len(runID) > 8 {
		return runID[len(runID)-8:]
	}
	return runID
}

// ShortIDs abbreviates each run id.
func ShortIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = ShortID(id)
	}
	return out
}

// KillableServer starts a dedicated dev server for a test that kills it. In
// an environment where that is impossible it records every check as not
// measured, with the reason, and returns false.
func (e *Env) KillableServer(t testing.TB, o ServerOptions, checks ...*Check) (*Server, bool) {
	t.Helper()
	if ok, why := e.CanKillServer(); !ok {
		for _, c := range checks {
			c.NotMeasured(why)
		}
		return nil, false
	}
	return e.StartServer(t, o), true
}
