package workflows

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/durabench/durabench/agent/llm"
	"github.com/durabench/durabench/agent/store"
	"github.com/durabench/durabench/agent/tools"
)

// Application error types activities return.
const (
	ErrTypeLLMRequest = "LLMRequestError" // the provider refused the request itself; retrying cannot help
	ErrTypeLLMRetry   = "LLMUnavailable"
	ErrTypeRestricted = "RestrictedOperation"
	ErrTypeDelivery   = "DeliveryRefused" // the receiver refused the delivery itself; retrying cannot help
)

// SchedulePauser pauses a schedule in Temporal and the store; the schedule
// manager implements it.
type SchedulePauser interface {
	PauseForFailures(ctx context.Context, scheduleID, reason string) error
}

// Reconciler compares the store with Temporal and repairs the difference;
// the schedule manager implements it.
type Reconciler interface {
	Reconcile(ctx context.Context) (ReconcileReport, error)
}

// Settings are the worker's choices for every run.
type Settings struct {
	Model                  string
	Temperature            float64
	Pricing                llm.Pricing
	Stream                 bool
	MaxConsecutiveFailures int64
	MaxSubqueries          int
	EnoughResults          int
	SearchDeadline         time.Duration
	DecomposeMaxTokens     int
	SynthesisMaxTokens     int
	LLMAttempts            int32
	CallTimeout            time.Duration
	HeartbeatTimeout       time.Duration
}

// DefaultSettings run the local model.
func DefaultSettings() Settings {
	return Settings{
		Model: llm.LocalModel, Temperature: 0.2, Pricing: llm.DefaultPricing(), Stream: true,
		MaxConsecutiveFailures: 3, MaxSubqueries: 3, EnoughResults: 4, SearchDeadline: 30 * time.Second,
		DecomposeMaxTokens: 128, SynthesisMaxTokens: 600, LLMAttempts: 3,
		CallTimeout: 2 * time.Minute, HeartbeatTimeout: 15 * time.Second,
	}
}

// Activities are the side effects of the workflows.
type Activities struct {
	Store      *store.Store
	LLM        *llm.Client
	Corpus     *tools.Corpus
	HTTP       *http.Client
	Operations tools.Operations
	Schedules  SchedulePauser
	Reconciler Reconciler
	Settings   Settings
}

// StartRunInput names the run to record.
type StartRunInput struct {
	ScheduleID string `json:"schedule_id"`
	RunID      string `json:"run_id"`
	Trigger    string `json:"trigger"`
}

// StartRun reads the schedule and records the run's start, or tells the
// workflow to do nothing when the schedule is paused or deleted in the store.
func (a *Activities) StartRun(ctx context.Context, in StartRunInput) (RunPlan, error) {
	sc, err := a.Store.LookupSchedule(ctx, in.ScheduleID)
	if errors.Is(err, store.ErrNotFound) {
		return RunPlan{Skip: true, SkipReason: "the schedule is not in the store"}, nil
	}
	if err != nil {
		return RunPlan{}, err
	}
	if sc.Status != store.StatusActive {
		reason := fmt.Sprintf("the schedule is %s in the store", sc.Status)
		if err := a.Store.Audit(ctx, store.AuditEvent{Scope: sc.Scope(), ScheduleID: sc.ID, RunID: in.RunID, Action: "run.skipped", Detail: reason}); err != nil {
			return RunPlan{}, err
		}
		return RunPlan{Skip: true, SkipReason: reason}, nil
	}
	taskID := in.RunID + "-agent"
	if _, err := a.Store.StartRun(ctx, store.Run{ID: in.RunID, ScheduleID: sc.ID, TenantID: sc.TenantID, UserID: sc.UserID, TaskID: taskID, Trigger: in.Trigger}); err != nil {
		return RunPlan{}, err
	}
	s := a.Settings
	h := fnv.New64a()
	h.Write([]byte(in.RunID))
	return RunPlan{
		RunID:                  in.RunID,
		MaxConsecutiveFailures: s.MaxConsecutiveFailures,
		Task: ResearchInput{
			TaskID: taskID, RunID: in.RunID, ScheduleID: sc.ID, Query: sc.Query,
			Budget:  Budget{MaxUSD: sc.BudgetUSD, MaxTokens: sc.MaxTokens},
			Timeout: time.Duration(sc.TimeoutSeconds) * time.Second,
			Model:   s.Model, Temperature: s.Temperature,
			// The seed is derived from the run, so a rerun of the same
			// prompt is reproducible and recorded.
			Seed: int64(h.Sum64() >> 1), Price: s.Pricing.For(s.Model), ToolPrices: tools.Price,
			Background: true, Deliver: sc.Deliver, ApprovedOperations: sc.ApprovedOperations,
			MaxSubqueries: s.MaxSubqueries, EnoughResults: s.EnoughResults, SearchDeadline: s.SearchDeadline,
			DecomposeMaxTokens: s.DecomposeMaxTokens, SynthesisMaxTokens: s.SynthesisMaxTokens,
			LLMAttempts: s.LLMAttempts, CallTimeout: s.CallTimeout, HeartbeatTimeout: s.HeartbeatTimeout, Stream: s.Stream,
		},
	}, nil
}

// CloseRun records the end of the run; a retry after the record closed
// changes nothing and reports the same failure count.
func (a *Activities) CloseRun(ctx context.Context, in CloseRunInput) (store.CloseResult, error) {
	return a.Store.CloseRun(ctx, in.RunID, in.End)
}

// PauseForFailuresInput names the schedule and why.
type PauseForFailuresInput struct {
	ScheduleID string `json:"schedule_id"`
	Reason     string `json:"reason"`
}

// PauseForFailures pauses the schedule after too many failed runs.
func (a *Activities) PauseForFailures(ctx context.Context, in PauseForFailuresInput) error {
	return a.Schedules.PauseForFailures(ctx, in.ScheduleID, in.Reason)
}

// errNoAnswer is the error of an attempt that never reported its end.
const errNoAnswer = "no answer: the attempt timed out or its worker was lost"

// Chat makes one attempt of an LLM call. Temporal retries it on the server,
// out of the workflow's sight, and a provider bills an attempt that answered
// malformed or not in time, so the attempts are passed from one to the next
// in the heartbeat details, this one counted as unanswered until it ends:
// the workflow finds them all in the answer (the earlier ones), in the last
// attempt's error, or, when that attempt timed out or its worker died, in
// its last heartbeat. Heartbeating also lets a worker crash be noticed after
// the heartbeat timeout rather than the call timeout.
func (a *Activities) Chat(ctx context.Context, in ChatInput) (ChatOutput, error) {
	info := activity.GetInfo(ctx)
	var earlier []Attempt
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &earlier); err != nil {
			// Not this code's details: the earlier attempts are unknown.
			activity.GetLogger(ctx).Warn("unreadable heartbeat details; earlier attempts are not charged", "error", err)
			earlier = nil
		}
	}
	inFlight := append(slices.Clone(earlier), Attempt{Number: info.Attempt, Error: errNoAnswer})
	// The first heartbeat of an attempt is sent at once, before the call.
	activity.RecordHeartbeat(ctx, inFlight)
	stop := keepHeartbeating(ctx, info.HeartbeatTimeout, inFlight)
	var (
		resp *llm.Response
		err  error
	)
	if in.Stream {
		resp, err = a.LLM.Stream(ctx, in.Request, nil)
	} else {
		resp, err = a.LLM.Complete(ctx, in.Request)
	}
	stop()
	if err != nil {
		attempts := append(slices.Clone(earlier), Attempt{Number: info.Attempt, Refused: llm.Refused(err), Error: attemptError(err)})
		// The SDK sends this last heartbeat before it reports the failure,
		// so the next attempt starts from it.
		activity.RecordHeartbeat(ctx, attempts)
		return ChatOutput{}, chatError(err, attempts)
	}
	return ChatOutput{
		Content: resp.Content, Model: resp.Model, Usage: resp.Usage, Temperature: resp.Temperature,
		Seed: resp.Seed, PromptFingerprint: resp.PromptFingerprint, Attempt: info.Attempt, Earlier: earlier,
	}, nil
}

// attemptError is the message of a failed attempt as it is recorded in a
// call's name: short, and valid text without NUL, which PostgreSQL refuses
// (a provider's error message is copied from its answer).
func attemptError(err error) string {
	return strings.ToValidUTF8(strings.ReplaceAll(truncate(err.Error(), 200), "\x00", ""), "")
}

// keepHeartbeating records details every third of the heartbeat timeout
// (if there is one) until stop is called; stop returns once it has stopped,
// so that no heartbeat of it can overwrite a later one.
func keepHeartbeating(ctx context.Context, timeout time.Duration, details []Attempt) (stop func()) {
	if timeout <= 0 {
		return func() {}
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(timeout / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				// A heartbeat without details would erase them on the server.
				activity.RecordHeartbeat(ctx, details)
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// chatError is the activity error for a failed attempt, carrying the
// attempts so far.
func chatError(err error, attempts []Attempt) error {
	opts := temporal.ApplicationErrorOptions{Cause: err, Details: []any{attempts}}
	var ae *llm.APIError
	if errors.As(err, &ae) && !ae.Retryable() {
		opts.NonRetryable = true
		return temporal.NewApplicationErrorWithOptions(ae.Error(), ErrTypeLLMRequest, opts)
	}
	if errors.As(err, &ae) {
		opts.NextRetryDelay = ae.RetryAfter // zero leaves the retry policy's interval
	}
	return temporal.NewApplicationErrorWithOptions(err.Error(), ErrTypeLLMRetry, opts)
}

// Search queries the corpus.
func (a *Activities) Search(_ context.Context, query string) ([]tools.Hit, error) {
	return a.Corpus.Search(query, 3), nil
}

// Fetch reads a document.
func (a *Activities) Fetch(ctx context.Context, ref string) (string, error) {
	return a.Corpus.Fetch(ctx, a.HTTP, ref)
}

// Deliver hands the report to an operation after checking the policy again
// (the workflow checked it before the run spent anything): notify to the
// webhook, a restricted operation to the simulator. What was done is
// recorded in the run's audit trail, which is what the owner reads. A
// failed attempt is retried by the activity's retry policy unless the
// receiver refused the delivery itself.
func (a *Activities) Deliver(ctx context.Context, in DeliverInput) error {
	if err := (tools.Policy{Background: in.Background, Approved: in.ApprovedOperations}).Check(in.Operation); err != nil {
		var re *tools.RestrictedError
		if errors.As(err, &re) {
			return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeRestricted, err)
		}
		return temporal.NewNonRetryableApplicationError(err.Error(), "UnknownOperation", err)
	}
	sc, err := a.Store.LookupSchedule(ctx, in.ScheduleID)
	if err != nil {
		return err
	}
	done, err := a.Operations.Perform(ctx, tools.Delivery{Operation: in.Operation, TenantID: sc.TenantID, UserID: sc.UserID,
		ScheduleID: sc.ID, ScheduleName: sc.Name, RunID: in.RunID, Report: in.Report})
	var de *tools.DeliveryError
	if errors.As(err, &de) && de.Permanent {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeDelivery, err)
	}
	if err != nil {
		return err
	}
	return a.Store.Audit(ctx, store.AuditEvent{Scope: sc.Scope(), ScheduleID: sc.ID, RunID: in.RunID,
		Action: "run.delivered." + in.Operation, Detail: truncate(done+"\n"+in.Report, 2000)})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Reconcile runs one reconciliation pass.
func (a *Activities) Reconcile(ctx context.Context) (ReconcileReport, error) {
	return a.Reconciler.Reconcile(ctx)
}
