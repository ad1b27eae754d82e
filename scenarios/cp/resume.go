package cp

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/harness/ledger"
)

// CP-02's workflow: numbered steps run one after another, each an activity
// that records its executions in an external ledger, so that a test can tell
// which steps a retry, a fix or a reset ran again.

// resumeItemSignal carries an item to a run waiting for items after step 1.
const resumeItemSignal = "resume-item"

// resumeRetryInterval is the constant delay between attempts of a step: short
// so that the checks are quick, and the unit of CP-02.activity-pause-resume's
// observation window.
const resumeRetryInterval = 200 * time.Millisecond

// ResumeInput is a run of ResumeWorkflow.
type ResumeInput struct {
	Steps     int
	FailStep  int   // this step fails transiently...
	FailUntil int32 // ...on attempts before this one
	// MaxAttempts of each step; 0: unlimited.
	MaxAttempts int32
	// WaitItems: after step 1, wait for this many item signals.
	WaitItems int
}

// ResumeResult is what a run returns.
type ResumeResult struct {
	Outputs []string // each step's output, naming the build that ran it
	Items   []string // the item signals received, in order
}

// resumeCall is what a step's activity is given.
type resumeCall struct {
	Key       string // workflow id
	Step      int
	FailUntil int32
}

// resumeStepID is a step's activity id, by which history and the activity
// pause API name it.
func resumeStepID(step int) string { return fmt.Sprintf("step-%d", step) }

// ResumeWorkflow runs steps 1..Steps; after step 1 it may wait for item
// signals.
func ResumeWorkflow(ctx workflow.Context, in ResumeInput) (ResumeResult, error) {
	key := workflow.GetInfo(ctx).WorkflowExecution.ID
	var res ResumeResult
	for step := 1; step <= in.Steps; step++ {
		// A step takes milliseconds; a short start-to-close timeout hands an
		// attempt lost with a stopped worker to the next one soon.
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			ActivityID: resumeStepID(step), StartToCloseTimeout: 2 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: resumeRetryInterval, BackoffCoefficient: 1, MaximumAttempts: in.MaxAttempts,
			},
		})
		c := resumeCall{Key: key, Step: step}
		if step == in.FailStep {
			c.FailUntil = in.FailUntil
		}
		var out string
		if err := workflow.ExecuteActivity(actx, "ResumeStep", c).Get(ctx, &out); err != nil {
			return res, err
		}
		res.Outputs = append(res.Outputs, out)
		if step == 1 && in.WaitItems > 0 {
			ch := workflow.GetSignalChannel(ctx, resumeItemSignal)
			for len(res.Items) < in.WaitItems {
				var item string
				ch.Receive(ctx, &item)
				res.Items = append(res.Items, item)
			}
		}
	}
	return res, nil
}

// ResumeActivities is one build of the steps: Bug names a step that this
// build fails on every attempt (0: none), the fault a fixed build removes.
type ResumeActivities struct {
	Ledger string
	Build  string
	Bug    int
}

// ResumeStep performs one step's side effect.
func (a *ResumeActivities) ResumeStep(ctx context.Context, c resumeCall) (string, error) {
	attempt := activity.GetInfo(ctx).Attempt
	rec := func(phase string) error {
		return ledger.Append(a.Ledger, ledger.Entry{Key: c.Key, Step: c.Step, Attempt: attempt, Phase: phase})
	}
	if err := rec(ledger.Start); err != nil {
		return "", err
	}
	var fault error
	switch {
	case a.Bug == c.Step:
		fault = fmt.Errorf("build %s: step %d hits a bug (attempt %d)", a.Build, c.Step, attempt)
	case attempt < c.FailUntil:
		fault = fmt.Errorf("step %d fails transiently (attempt %d)", c.Step, attempt)
	}
	if fault != nil {
		if err := rec(sagaActionFail); err != nil {
			return "", err
		}
		return "", fault
	}
	if err := rec(ledger.Done); err != nil {
		return "", err
	}
	return fmt.Sprintf("step %d by build %s", c.Step, a.Build), nil
}

// registerResume registers the workflow and one build of its activities.
func registerResume(r worker.Registry, acts *ResumeActivities) {
	r.RegisterWorkflow(ResumeWorkflow)
	r.RegisterActivity(acts)
}
