package rt

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of the package's checks that a negative control
// guards: each is a named predicate over what a scenario observed, with a
// table of cases that shows it can return false. The scenario and its
// control run the same predicate through harness.Decide.

// Predicates returns every predicate the package defines, with its table.
// Each check of RT-01..RT-04 is decided by one of them
// (scenarios/rules_test.go).
func Predicates() []predicate.Spec {
	return slices.Concat([]predicate.Spec{retryPredicate.Spec()}, retryPredicates(), timeoutPredicates(), breakerPredicates(), heartbeatPredicates())
}

// retrySucceedsAt is the attempt on which RT-01's scripted activity first
// succeeds: attempts before it fail.
const retrySucceedsAt = 3

// retryRun is what one call of an activity failing before attempt
// retrySucceedsAt did (RT-01.retries-until-success and its single-attempt
// control).
type retryRun struct {
	policy   string          // the retry policy, as described in the detail
	attempts []int32         // attempt numbers the activity saw, sorted
	delays   []time.Duration // from the end of each attempt to the start of the next
	out      string          // the workflow's result
	err      error           // the workflow's error
}

// retriedUntilSuccess: attempts 1 to retrySucceedsAt each ran exactly once,
// and the workflow completed with the result of the attempt that succeeded.
func retriedUntilSuccess(r retryRun) bool {
	return r.err == nil && r.out == fmt.Sprintf("succeeded on attempt %d", retrySucceedsAt) && slices.Equal(r.attempts, seq(retrySucceedsAt))
}

// seq is 1..n.
func seq(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i + 1)
	}
	return out
}

var retryPredicate = predicate.New("RT-01.retries-until-success", "retriedUntilSuccess", retriedUntilSuccess,
	predicate.Case[retryRun]{Name: "server default policy: attempts 1-3, succeeds on 3",
		In: retryRun{attempts: []int32{1, 2, 3}, delays: []time.Duration{1010 * time.Millisecond, 2015 * time.Millisecond}, out: "succeeded on attempt 3"}, Want: true},
	predicate.Case[retryRun]{Name: "maximum attempts 1: one attempt, the workflow fails",
		In: retryRun{attempts: []int32{1}, err: errors.New("workflow execution error (type: CallWorkflow): activity error (type: Scripted, scheduledEventID: 5, startedEventID: 6): attempt 1 fails by design")}, Want: false},
	predicate.Case[retryRun]{Name: "succeeds, but attempt 3 ran twice",
		In: retryRun{attempts: []int32{1, 2, 3, 3}, delays: []time.Duration{time.Second, 2 * time.Second, 0}, out: "succeeded on attempt 3"}, Want: false},
	predicate.Case[retryRun]{Name: "maximum attempts 2: gives up before the attempt that would succeed",
		In: retryRun{attempts: []int32{1, 2}, delays: []time.Duration{time.Second}, err: errors.New("workflow execution error (type: CallWorkflow): activity error: attempt 2 fails by design")}, Want: false},
)
