// Package workflows holds the background agent's Temporal workflows and
// activities: ScheduledRunWorkflow (started by a Temporal Schedule: record
// the start, run the agent as a child with the budget, record the end, which
// always happens, and pause the schedule after N consecutive failures),
// ResearchAgentWorkflow (decompose, parallel search, synthesis, with
// pause/resume/cancel signals and a status query behind a version gate, the
// budget charged before every LLM and tool call, and the restricted-operation
// policy of background runs), and ReconcileWorkflow (store against Temporal,
// periodically).
package workflows

import (
	"time"

	"github.com/durabench/durabench/agent/llm"
	"github.com/durabench/durabench/agent/store"
)

// Registered names.
const (
	ScheduledRunName = "ScheduledRunWorkflow"
	ResearchName     = "ResearchAgentWorkflow"
	ReconcileName    = "ReconcileWorkflow"
)

// Signals and the query of ResearchAgentWorkflow.
const (
	SignalPause  = "pause"
	SignalResume = "resume"
	SignalCancel = "cancel"
	QueryStatus  = "status"
)

// VersionPauseResume gates the signals and the query, so that histories
// recorded before they existed still replay.
const VersionPauseResume = "pause_resume_v1"

// ScheduledRunInput is the argument the Temporal Schedule passes. It names
// the schedule only: the run reads the schedule's current settings from the
// store, so an update applies to the next run and a schedule paused or
// deleted in the store makes the run do nothing.
type ScheduledRunInput struct {
	ScheduleID string `json:"schedule_id"`
	Trigger    string `json:"trigger"` // "schedule" or "manual"
}

// RunPlan is what StartRun found: whether to run, and with what.
type RunPlan struct {
	Skip                   bool          `json:"skip"`
	SkipReason             string        `json:"skip_reason,omitempty"`
	RunID                  string        `json:"run_id"`
	Task                   ResearchInput `json:"task"`
	MaxConsecutiveFailures int64         `json:"max_consecutive_failures"`
}

// RunOutcome is the scheduled run's result.
type RunOutcome struct {
	RunID   string          `json:"run_id"`
	Status  store.RunStatus `json:"status"` // "" when skipped
	Skipped string          `json:"skipped,omitempty"`
	CostUSD float64         `json:"cost_usd"`
	Error   string          `json:"error,omitempty"`
	Paused  string          `json:"paused,omitempty"` // the reason, when this run paused the schedule
}

// ResearchInput is one agent task.
type ResearchInput struct {
	TaskID             string             `json:"task_id"`
	Query              string             `json:"query"`
	Budget             Budget             `json:"budget"`
	Timeout            time.Duration      `json:"timeout"` // the task's own deadline
	Model              string             `json:"model"`
	Temperature        float64            `json:"temperature"`
	Seed               int64              `json:"seed"`
	Price              llm.Price          `json:"price"`
	ToolPrices         map[string]float64 `json:"tool_prices"`
	Background         bool               `json:"background"`
	Deliver            []string           `json:"deliver"`
	ApprovedOperations []string           `json:"approved_operations"`
	MaxSubqueries      int                `json:"max_subqueries"`
	EnoughResults      int                `json:"enough_results"`  // search goes on with this many hits
	SearchDeadline     time.Duration      `json:"search_deadline"` // or after this long
	DecomposeMaxTokens int                `json:"decompose_max_tokens"`
	SynthesisMaxTokens int                `json:"synthesis_max_tokens"`
	LLMAttempts        int32              `json:"llm_attempts"` // the most attempts of an LLM call; fewer if the budget cannot pay for them all
	CallTimeout        time.Duration      `json:"call_timeout"`
	HeartbeatTimeout   time.Duration      `json:"heartbeat_timeout"`
	Stream             bool               `json:"stream"`
	// RunID and ScheduleID let deliveries be recorded against the run.
	RunID      string `json:"run_id"`
	ScheduleID string `json:"schedule_id"`
}

// ResearchResult is how the agent task ended, with its spend. Operational
// failures (an LLM that keeps failing, a refused operation, the budget) are
// results, not errors, so that the spend up to the failure is recorded.
type ResearchResult struct {
	Status           store.RunStatus `json:"status"`
	Report           string          `json:"report"`
	Error            string          `json:"error,omitempty"`
	ErrorCode        string          `json:"error_code,omitempty"` // e.g. restricted_operation, budget_exceeded
	Budget           Budget          `json:"budget"`
	PromptTokens     int64           `json:"prompt_tokens"`
	CompletionTokens int64           `json:"completion_tokens"`
	Model            string          `json:"model"`
	Calls            []store.Call    `json:"calls"`
}

// TaskStatus is what the status query returns.
type TaskStatus struct {
	State      string  `json:"state"` // running, paused, cancelling, done
	Phase      string  `json:"phase"` // starting, decompose, search, fetch, synthesise, deliver, done
	SpentUSD   float64 `json:"spent_usd"`
	BudgetUSD  float64 `json:"budget_usd"`
	UsedTokens int64   `json:"used_tokens"`
	MaxTokens  int64   `json:"max_tokens"`
	Calls      int     `json:"calls"`
}

// ChatInput is one LLM call, built in the workflow so that its cost bound is
// known before it is made.
type ChatInput struct {
	Request llm.Request `json:"request"`
	Stream  bool        `json:"stream"`
}

// ChatOutput is the call's answer and its accounting.
type ChatOutput struct {
	Content           string    `json:"content"`
	Model             string    `json:"model"`
	Usage             llm.Usage `json:"usage"`
	Temperature       float64   `json:"temperature"`
	Seed              int64     `json:"seed"`
	PromptFingerprint string    `json:"prompt_fingerprint"`
	Attempt           int32     `json:"attempt"`                    // the attempt that answered
	Earlier           []Attempt `json:"earlier_attempts,omitempty"` // the attempts that failed before it
}

// Attempt is one attempt of an LLM call as the Chat activity knows it. The
// activity passes the attempts of a call from one to the next in its
// heartbeat details and reports them with its answer or its last failure;
// the workflow charges each of them (Attempt.Charge).
type Attempt struct {
	Number int32      `json:"number"`
	Usage  *llm.Usage `json:"usage,omitempty"` // as the provider reported it, when it did
	// Refused is an error status from the provider, which it does not bill.
	Refused bool `json:"refused,omitempty"`
	// Error is why the attempt failed; an attempt still in flight carries
	// errNoAnswer, which stands if it never reports again.
	Error string `json:"error,omitempty"`
}

// DeliverInput hands the report to an operation, e.g. notify.
type DeliverInput struct {
	Operation          string   `json:"operation"`
	Background         bool     `json:"background"`
	ApprovedOperations []string `json:"approved_operations"`
	RunID              string   `json:"run_id"`
	ScheduleID         string   `json:"schedule_id"`
	Report             string   `json:"report"`
}

// CloseRunInput is the end of a run to record.
type CloseRunInput struct {
	RunID string       `json:"run_id"`
	End   store.RunEnd `json:"end"`
}

// ReconcileReport is what one reconciliation pass found and repaired.
type ReconcileReport struct {
	Checked         int      `json:"checked"`
	Recreated       []string `json:"recreated"`        // store rows whose Temporal schedule was missing
	DeletedOrphans  []string `json:"deleted_orphans"`  // Temporal schedules without a live row
	StatusFixed     []string `json:"status_fixed"`     // paused in one, active in the other
	SpecFixed       []string `json:"spec_fixed"`       // Temporal fired at other times than the row's cron
	FinishedCreates []string `json:"finished_creates"` // rows left "creating" whose Temporal schedule existed
	RemovedCreates  []string `json:"removed_creates"`  // rows left "creating" whose Temporal schedule did not
	FinishedDeletes []string `json:"finished_deletes"` // rows left in "deleting"
	ClosedRuns      []string `json:"closed_runs"`      // open run records whose workflow had ended
	Errors          []string `json:"errors"`
}
