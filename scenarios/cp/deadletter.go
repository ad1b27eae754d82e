package cp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// The dead-letter pattern of CP-04: Temporal has no dead-letter queue, so a
// run whose step exhausted its attempts tags itself with these custom search
// attributes and posts a notice to a webhook before it fails, or parks for a
// while so that an operator can re-drive it.
var (
	DeadLetterKey       = temporal.NewSearchAttributeKeyBool("DeadLetter")
	DeadLetterReasonKey = temporal.NewSearchAttributeKeyKeyword("DeadLetterReason")
)

// Names CP-04 uses.
const (
	ProcessActivityID = "process"
	MalformedItemType = "MalformedItem" // the error type of a poison item, recorded as DeadLetterReason
	poisonPrefix      = "poison"        // items Process cannot handle until it is fixed
	pendingPrefix     = "pending"       // items Process leaves to an external system (a run that is slow, not failing)
)

// PoisonInput is one item to process and how hard to try.
type PoisonInput struct {
	Item        string
	MaxAttempts int32         // of Process; 0: unlimited
	Interval    time.Duration // between attempts of Process
	Hold        time.Duration // how long a dead-lettered run stays open for a re-drive before it fails; 0: it fails at once
}

// DeadLetterNotice is the body posted to the webhook when a run is
// dead-lettered.
type DeadLetterNotice struct {
	WorkflowID   string `json:"workflowId"`
	RunID        string `json:"runId"`
	WorkflowType string `json:"workflowType"`
	Reason       string `json:"reason"`
	Error        string `json:"error"`
}

// DeadLetterActivities are the activities of CP-04.
type DeadLetterActivities struct {
	WebhookURL string
	fixed      atomic.Bool
	mu         sync.Mutex
	attempts   map[string][]time.Time // item -> start of each execution of Process
}

// fix stands for deploying the fix: from now on Process handles poison items.
func (a *DeadLetterActivities) fix() { a.fixed.Store(true) }

// attemptsOf is how many times Process ran for item.
func (a *DeadLetterActivities) attemptsOf(item string) int { return len(a.startsOf(item)) }

// startsOf is when each execution of Process for item started.
func (a *DeadLetterActivities) startsOf(item string) []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.attempts[item]...)
}

// Process handles one item: a poison item fails every attempt until the fix.
func (a *DeadLetterActivities) Process(ctx context.Context, item string) (string, error) {
	a.mu.Lock()
	if a.attempts == nil {
		a.attempts = map[string][]time.Time{}
	}
	a.attempts[item] = append(a.attempts[item], time.Now())
	a.mu.Unlock()
	switch {
	case strings.HasPrefix(item, pendingPrefix):
		return "", activity.ErrResultPending
	case strings.HasPrefix(item, poisonPrefix) && !a.fixed.Load():
		return "", temporal.NewApplicationError(fmt.Sprintf("cannot parse item %q", item), MalformedItemType)
	}
	return "processed " + item, nil
}

// NotifyDeadLetter posts the notice to the webhook.
func (a *DeadLetterActivities) NotifyDeadLetter(ctx context.Context, n DeadLetterNotice) error {
	body, err := json.Marshal(n)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// PoisonWorkflow processes one item. When Process exhausts its attempts the
// run dead-letters itself: it sets DeadLetter and DeadLetterReason, posts a
// notice, stays open for in.Hold (a re-drive resets it meanwhile), then
// fails with Process's error.
func PoisonWorkflow(ctx workflow.Context, in PoisonInput) (string, error) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID: ProcessActivityID, StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: in.Interval, BackoffCoefficient: 1, MaximumAttempts: in.MaxAttempts},
	})
	var out string
	err := workflow.ExecuteActivity(actx, "Process", in.Item).Get(ctx, &out)
	if err == nil {
		return out, nil
	}
	reason := "Unknown"
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		reason = appErr.Type()
	}
	if uerr := workflow.UpsertTypedSearchAttributes(ctx, DeadLetterKey.ValueSet(true), DeadLetterReasonKey.ValueSet(reason)); uerr != nil {
		return "", errors.Join(err, uerr)
	}
	info := workflow.GetInfo(ctx)
	notice := DeadLetterNotice{
		WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		WorkflowType: info.WorkflowType.Name, Reason: reason, Error: err.Error(),
	}
	nctx := opShortActivity(ctx, &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumAttempts: 5})
	if nerr := workflow.ExecuteActivity(nctx, "NotifyDeadLetter", notice).Get(ctx, nil); nerr != nil {
		return "", errors.Join(err, nerr)
	}
	if in.Hold > 0 {
		if serr := workflow.Sleep(ctx, in.Hold); serr != nil {
			return "", errors.Join(err, serr)
		}
	}
	return "", err
}
