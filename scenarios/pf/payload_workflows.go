package pf

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// registerPayload adds the PF-03 workflows and activities to a worker.
func registerPayload(r worker.Registry) {
	for _, wf := range []any{payloadEchoWorkflow, payloadResultWorkflow, payloadMakeWorkflow,
		payloadClaimCheckWorkflow, payloadDigestWorkflow, payloadGrowWorkflow} {
		r.RegisterWorkflow(wf)
	}
	r.RegisterActivity(payloadMakeBytes)
	r.RegisterActivity(payloadDigest)
}

// payloadBytes returns n bytes that do not compress, the same for the same
// seed, so that a size limit is met by the data and not by its entropy.
func payloadBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	_, _ = rng.Read(b)
	return b
}

// payloadSHA256 is the hex SHA-256 of b.
func payloadSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// payloadEchoWorkflow returns its input: one round trip of a payload through
// history, in and out.
func payloadEchoWorkflow(_ workflow.Context, data []byte) ([]byte, error) {
	return data, nil
}

// payloadMakeWorkflow returns n bytes made in the workflow: its own result is
// the payload under test.
func payloadMakeWorkflow(_ workflow.Context, n int) ([]byte, error) {
	return payloadBytes(n, 1), nil
}

// payloadMakeBytes is an activity returning n bytes.
func payloadMakeBytes(_ context.Context, n int) ([]byte, error) {
	return payloadBytes(n, 2), nil
}

// payloadDigest is an activity returning the hex SHA-256 of its input.
func payloadDigest(_ context.Context, data []byte) (string, error) {
	return payloadSHA256(data), nil
}

// payloadResultInput asks payloadResultWorkflow for one activity result.
type payloadResultInput struct {
	Size        int   // bytes the activity returns
	MaxAttempts int32 // 0: the server's default retry policy (unlimited attempts)
}

// payloadResultOutcome is what the workflow saw of the activity call. A
// failed call is handled, not propagated: the workflow completes with the
// fallback and the failure described.
type payloadResultOutcome struct {
	Length    int    // bytes received; 0 on failure
	Fallback  bool   // the activity failed and the workflow took its fallback path
	Error     string // the activity error as the workflow saw it
	CauseType string // ServerError, or ApplicationError:<type>
	Cause     string // the message of the activity error's cause
	Retryable string // of an application error cause: "yes" or "no"; empty for a server error, which says it in history
}

// payloadResultWorkflow calls payloadMakeBytes and reports the outcome; an
// activity failure leads to a fallback result instead of a failed workflow.
func payloadResultWorkflow(ctx workflow.Context, in payloadResultInput) (payloadResultOutcome, error) {
	ao := workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second}
	if in.MaxAttempts > 0 {
		ao.RetryPolicy = &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 1, MaximumAttempts: in.MaxAttempts}
	}
	var out []byte
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, ao), payloadMakeBytes, in.Size).Get(ctx, &out)
	if err == nil {
		return payloadResultOutcome{Length: len(out)}, nil
	}
	o := payloadResultOutcome{Fallback: true, Error: err.Error()}
	var se *temporal.ServerError
	var ae *temporal.ApplicationError
	switch {
	case errors.As(err, &se):
		o.CauseType, o.Cause = "ServerError", se.Message()
	case errors.As(err, &ae):
		o.CauseType, o.Cause, o.Retryable = "ApplicationError:"+ae.Type(), ae.Message(), "yes"
		if ae.NonRetryable() {
			o.Retryable = "no"
		}
	default:
		o.CauseType, o.Cause = fmt.Sprintf("%T", errors.Unwrap(err)), err.Error()
	}
	return o, nil
}

// payloadClaimCheckWorkflow hands its input to an activity that digests it,
// then returns the input: the object crosses history three times (workflow
// input, activity input and workflow result).
func payloadClaimCheckWorkflow(ctx workflow.Context, data []byte) ([]byte, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var digest string
	if err := workflow.ExecuteActivity(ctx, payloadDigest, data).Get(ctx, &digest); err != nil {
		return nil, err
	}
	return data, nil
}

// payloadDigested is a text together with the digest the worker computed of it.
type payloadDigested struct {
	SHA256 string
	Text   string
}

// payloadDigestWorkflow returns its input with the worker's SHA-256 of it,
// which proves the worker decoded what the client encoded.
func payloadDigestWorkflow(_ workflow.Context, text string) (payloadDigested, error) {
	return payloadDigested{SHA256: payloadSHA256([]byte(text)), Text: text}, nil
}

// payloadGrowInput drives payloadGrowWorkflow.
type payloadGrowInput struct {
	Batch         int  // activities run at once per step
	ResultBytes   int  // bytes each activity returns into history
	Target        int  // activities in total; 0: go on until the server stops the run
	ContinueAsNew bool // continue as new when the server suggests it
	Done          int  // activities run by earlier runs of the chain
	Runs          int  // runs before this one
}

// payloadGrowOutcome is the result of a payloadGrowWorkflow chain.
type payloadGrowOutcome struct {
	Done int
	Runs int
}

// payloadGrowWorkflow grows its history by batches of activities; with
// ContinueAsNew it starts a fresh run whenever the server suggests one.
func payloadGrowWorkflow(ctx workflow.Context, in payloadGrowInput) (payloadGrowOutcome, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	in.Runs++
	for in.Target == 0 || in.Done < in.Target {
		if in.ContinueAsNew && workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return payloadGrowOutcome{}, workflow.NewContinueAsNewError(ctx, payloadGrowWorkflow, in)
		}
		futures := make([]workflow.Future, in.Batch)
		for i := range futures {
			futures[i] = workflow.ExecuteActivity(ctx, payloadMakeBytes, in.ResultBytes)
		}
		for _, f := range futures {
			var b []byte
			if err := f.Get(ctx, &b); err != nil {
				return payloadGrowOutcome{}, err
			}
		}
		in.Done += in.Batch
	}
	return payloadGrowOutcome{Done: in.Done, Runs: in.Runs}, nil
}
