package ex

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/harness/ledger"
)

// EffectInput configures EffectWorkflow.
type EffectInput struct {
	FailAttempts  int32 // attempts up to this one fail after their write
	WaitForSignal bool  // after the activity, wait for a "continue" signal
}

// EffectOutcome is what one execution of the Effect activity reports.
type EffectOutcome struct {
	Key     string // idempotency key
	Attempt int32  // attempt number reported by the SDK
	PID     int    // process that executed it
	Applied bool   // false when the store already held the key (a dropped duplicate)
}

// Names used by EffectWorkflow.
const (
	EffectActivityName = "Effect"
	continueSignal     = "continue"
)

// Ledger phases written by the Effect activity, one line per execution.
const (
	effectApplied = "effect-applied"
	effectDropped = "effect-dropped"
)

// EffectWorkflow performs one external side effect through the Effect
// activity and returns what the activity reported.
func EffectWorkflow(ctx workflow.Context, in EffectInput) (EffectOutcome, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// Short, so that an attempt held by a killed worker times out soon.
		StartToCloseTimeout: 2 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 1, MaximumAttempts: 10,
		},
	})
	var out EffectOutcome
	if err := workflow.ExecuteActivity(ctx, EffectActivityName, in.FailAttempts).Get(ctx, &out); err != nil {
		return out, err
	}
	if in.WaitForSignal {
		workflow.GetSignalChannel(ctx, continueSignal).Receive(ctx, nil)
	}
	return out, nil
}

// IdempotencyKey is the key an activity hands the external system: workflow
// id and activity id, the same on every attempt of one activity.
func IdempotencyKey(info activity.Info) string {
	return info.WorkflowExecution.ID + "." + info.ActivityID
}

// EffectStore is the external system: a directory holding one file per
// effect, named by its idempotency key and created with O_EXCL, so that a
// second write with the same key is dropped.
type EffectStore string

// Apply writes the effect for key; it reports false when the key was
// already there and the write was dropped.
func (s EffectStore) Apply(key string) (bool, error) {
	f, err := os.OpenFile(filepath.Join(string(s), url.PathEscape(key)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("effect store: %w", err)
	}
	return true, f.Close()
}

// Keys lists the keys of the effects the store holds.
func (s EffectStore) Keys() ([]string, error) {
	entries, err := os.ReadDir(string(s))
	if err != nil {
		return nil, fmt.Errorf("effect store: %w", err)
	}
	keys := make([]string, 0, len(entries))
	for _, e := range entries {
		k, err := url.PathUnescape(e.Name())
		if err != nil {
			return nil, fmt.Errorf("effect store: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Effects is the Effect activity. Every execution writes to the keyed store
// and then appends a line to the ledger (which keeps every execution, as an
// external system without a key would).
type Effects struct {
	Store  EffectStore
	Ledger string
	// Block makes an execution hold its completion after the write until its
	// attempt times out, so that a test can kill the worker in between.
	Block bool
}

// Run performs the effect; attempts up to failAttempts fail after the write.
func (e *Effects) Run(ctx context.Context, failAttempts int32) (EffectOutcome, error) {
	info := activity.GetInfo(ctx)
	out := EffectOutcome{Key: IdempotencyKey(info), Attempt: info.Attempt, PID: os.Getpid()}
	applied, err := e.Store.Apply(out.Key)
	if err != nil {
		return out, err
	}
	out.Applied = applied
	phase := effectDropped
	if applied {
		phase = effectApplied
	}
	if err := ledger.Append(e.Ledger, ledger.Entry{Key: out.Key, Attempt: info.Attempt, PID: out.PID, Phase: phase}); err != nil {
		return out, err
	}
	if info.Attempt <= failAttempts {
		return out, temporal.NewApplicationError(fmt.Sprintf("attempt %d fails after its write, as planned", info.Attempt), "PlannedFailure")
	}
	if e.Block {
		<-ctx.Done()
		return out, ctx.Err()
	}
	return out, nil
}
