package workflows

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/agent/llm"
	"github.com/durabench/durabench/agent/store"
	"github.com/durabench/durabench/agent/tools"
)

// Error codes of a ResearchResult.
const (
	CodeBudget     = "budget_exceeded"
	CodeRestricted = "restricted_operation"
	CodeLLM        = "llm_failed"
	CodeTool       = "tool_failed"
	CodeTimeout    = "timed_out"
	CodeCancelled  = "cancelled"
)

// agentRun is the state of one ResearchAgentWorkflow.
type agentRun struct {
	in        ResearchInput
	budget    Budget
	calls     []store.Call
	prompt    int64
	complete  int64
	model     string
	phase     string
	paused    bool
	cancelled bool
	timedOut  bool
}

func (r *agentRun) status() TaskStatus {
	state := "running"
	switch {
	case r.phase == "done":
		state = "done"
	case r.cancelled:
		state = "cancelling"
	case r.paused:
		state = "paused"
	}
	return TaskStatus{State: state, Phase: r.phase, SpentUSD: r.budget.SpentUSD, BudgetUSD: r.budget.MaxUSD,
		UsedTokens: r.budget.UsedTokens, MaxTokens: r.budget.MaxTokens, Calls: len(r.calls)}
}

// stopError ends the task early with a status; it is turned into a result.
type stopError struct {
	status store.RunStatus
	code   string
	err    error
}

func (e *stopError) Error() string { return e.err.Error() }

// ResearchAgentWorkflow decomposes the query, searches in parallel, fetches
// the best sources, has the LLM write the report and delivers it.
func ResearchAgentWorkflow(ctx workflow.Context, in ResearchInput) (ResearchResult, error) {
	r := &agentRun{in: in, budget: in.Budget, phase: "starting"}
	ctx, cancel := workflow.WithCancel(ctx)
	defer cancel()

	if workflow.GetVersion(ctx, VersionPauseResume, workflow.DefaultVersion, 1) >= 1 {
		if err := r.handleControl(ctx, cancel); err != nil {
			return ResearchResult{}, err
		}
	}
	if in.Timeout > 0 {
		// The task's own deadline: stopping here, rather than by the
		// workflow timeout, lets the result carry the spend so far.
		workflow.Go(ctx, func(gctx workflow.Context) {
			if workflow.NewTimer(gctx, in.Timeout).Get(gctx, nil) == nil {
				r.timedOut = true
				cancel()
			}
		})
	}

	report, err := r.run(ctx)
	r.phase = "done"
	return r.result(report, err), nil
}

// handleControl registers the pause, resume and cancel signals and the
// status query.
func (r *agentRun) handleControl(ctx workflow.Context, cancel workflow.CancelFunc) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (TaskStatus, error) { return r.status(), nil }); err != nil {
		return err
	}
	pause := workflow.GetSignalChannel(ctx, SignalPause)
	resume := workflow.GetSignalChannel(ctx, SignalResume)
	cancelCh := workflow.GetSignalChannel(ctx, SignalCancel)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(pause, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); r.paused = true })
			sel.AddReceive(resume, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); r.paused = false })
			sel.AddReceive(cancelCh, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, nil)
				r.cancelled = true
				cancel()
			})
			sel.Select(ctx)
			if ctx.Err() != nil {
				return
			}
		}
	})
	return nil
}

// checkpoint waits while paused and stops a cancelled or timed-out task;
// it runs before every step.
func (r *agentRun) checkpoint(ctx workflow.Context, phase string) error {
	r.phase = phase
	err := workflow.Await(ctx, func() bool { return !r.paused || r.cancelled || r.timedOut })
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		return nil
	}
	if s := r.stopped(err); s != nil {
		return s
	}
	return err
}

// stopped says why the task is being stopped, if it is: its deadline, the
// cancel signal, or a cancellation of the workflow itself (err is then a
// CanceledError). A step whose activity failed asks it before blaming the
// activity.
func (r *agentRun) stopped(err error) *stopError {
	switch {
	case r.timedOut:
		return &stopError{store.RunTimedOut, CodeTimeout, fmt.Errorf("the task ran past its timeout of %s", r.in.Timeout)}
	case r.cancelled:
		return &stopError{store.RunCancelled, CodeCancelled, errors.New("cancelled by the user")}
	case temporal.IsCanceledError(err):
		return &stopError{store.RunCancelled, CodeCancelled, errors.New("the task's workflow was cancelled")}
	}
	return nil
}

func (r *agentRun) run(ctx workflow.Context) (string, error) {
	// Refuse a restricted delivery before spending anything on the run.
	policy := tools.Policy{Background: r.in.Background, Approved: r.in.ApprovedOperations}
	for _, op := range r.in.Deliver {
		if err := policy.Check(op); err != nil {
			return "", &stopError{store.RunFailed, CodeRestricted, err}
		}
	}
	if err := r.checkpoint(ctx, "decompose"); err != nil {
		return "", err
	}
	queries, err := r.decompose(ctx)
	if err != nil {
		return "", err
	}
	if err := r.checkpoint(ctx, "search"); err != nil {
		return "", err
	}
	hits, err := r.search(ctx, queries)
	if err != nil {
		return "", err
	}
	if err := r.checkpoint(ctx, "fetch"); err != nil {
		return "", err
	}
	sources, err := r.fetch(ctx, hits)
	if err != nil {
		return "", err
	}
	if err := r.checkpoint(ctx, "synthesise"); err != nil {
		return "", err
	}
	report, err := r.chat(ctx, "synthesise", []llm.Message{
		{Role: "system", Content: "You write a concise digest for a busy reader, citing the sources given."},
		{Role: "user", Content: "Request: " + r.in.Query + "\nSources:\n" + strings.Join(sources, "\n")},
	}, r.in.SynthesisMaxTokens)
	if err != nil {
		return "", err
	}
	for _, op := range r.in.Deliver {
		if err := r.checkpoint(ctx, "deliver"); err != nil {
			return report, err
		}
		if err := r.deliver(ctx, op, report); err != nil {
			return report, err
		}
	}
	return report, nil
}

// listMarker is a bullet or number a model may put before each query.
var listMarker = regexp.MustCompile(`^\s*(?:[-*•]|\d+[.)])\s*`)

// decomposeMessages ask the LLM to split query into at most n queries.
func decomposeMessages(query string, n int) []llm.Message {
	return []llm.Message{
		{Role: "system", Content: fmt.Sprintf("You split a research request into at most %d short web search queries. %s",
			n, llm.DecomposeInstruction)},
		{Role: "user", Content: query},
	}
}

func (r *agentRun) decompose(ctx workflow.Context) ([]string, error) {
	out, err := r.chat(ctx, "decompose", decomposeMessages(r.in.Query, r.in.MaxSubqueries), r.in.DecomposeMaxTokens)
	if err != nil {
		return nil, err
	}
	var queries []string
	for _, line := range strings.Split(out, "\n") {
		q := strings.TrimSpace(listMarker.ReplaceAllString(line, ""))
		if q != "" && len(queries) < r.in.MaxSubqueries {
			queries = append(queries, q)
		}
	}
	if len(queries) == 0 {
		queries = []string{r.in.Query}
	}
	return queries, nil
}

// chat makes an LLM call. Temporal retries it on the server, and a provider
// bills an attempt that answered malformed or not in time as well as one
// that answered, so the call reserves the worst case of every attempt it may
// make, with as many attempts as the budget allows, and settles to the
// charge of the attempts it reports (Attempt.Charge), each recorded as a
// call of its own.
func (r *agentRun) chat(ctx workflow.Context, step string, msgs []llm.Message, maxTokens int) (string, error) {
	req := llm.Request{Model: r.in.Model, Messages: msgs, Temperature: r.in.Temperature, Seed: r.in.Seed, MaxTokens: maxTokens}
	bound, err := llm.UpperBound(req)
	if err != nil {
		return "", &stopError{store.RunFailed, CodeLLM, err}
	}
	per := Reservation{USD: bound.Cost(r.in.Price), Tokens: bound.Tokens()}
	attempts, res, err := r.budget.ReserveAttempts("the "+step+" LLM call", per, r.in.LLMAttempts)
	if err != nil {
		return "", &stopError{store.RunBudgetExceeded, CodeBudget, err}
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: r.in.CallTimeout,
		HeartbeatTimeout:    r.in.HeartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			MaximumAttempts: attempts, NonRetryableErrorTypes: []string{ErrTypeLLMRequest},
		},
	})
	var a *Activities
	var out ChatOutput
	err = workflow.ExecuteActivity(actx, a.Chat, ChatInput{Request: req, Stream: r.in.Stream}).Get(ctx, &out)
	tried := reportedAttempts(err)
	if err == nil {
		tried = append(out.Earlier, Attempt{Number: out.Attempt, Usage: &out.Usage})
	}
	var spent float64
	var used int64
	for _, at := range tried {
		billed := at.Charge(bound)
		call := store.Call{Kind: "llm", Name: step, Model: req.Model, Temperature: req.Temperature, Seed: req.Seed,
			PromptFingerprint: llm.Fingerprint(msgs), PromptTokens: billed.PromptTokens,
			CompletionTokens: billed.CompletionTokens, CostUSD: r.in.Price.Cost(billed)}
		if at.Error != "" {
			call.Name = fmt.Sprintf("%s attempt %d failed: %s", step, at.Number, at.Error)
		} else {
			call.Model, call.Temperature, call.Seed, call.PromptFingerprint = out.Model, out.Temperature, out.Seed, out.PromptFingerprint
		}
		call.Seq = int64(len(r.calls) + 1)
		r.calls = append(r.calls, call)
		r.prompt += billed.PromptTokens
		r.complete += billed.CompletionTokens
		spent += call.CostUSD
		used += billed.PromptTokens + billed.CompletionTokens
	}
	r.budget.Settle(res, spent, used)
	if err != nil {
		if s := r.stopped(err); s != nil {
			return "", s
		}
		return "", &stopError{store.RunFailed, CodeLLM, fmt.Errorf("%s LLM call: %w", step, err)}
	}
	r.model = out.Model
	return out.Content, nil
}

// reportedAttempts are the attempts a failed LLM call reported: in its last
// attempt's error, or in its last heartbeat when that attempt timed out. A
// call the workflow stopped waiting for (a cancel, the task's deadline)
// reports none.
func reportedAttempts(err error) []Attempt {
	var (
		appErr  *temporal.ApplicationError
		timeout *temporal.TimeoutError
		decode  func(...any) error
	)
	switch {
	case errors.As(err, &timeout) && timeout.HasLastHeartbeatDetails():
		decode = timeout.LastHeartbeatDetails
	case errors.As(err, &appErr) && appErr.HasDetails():
		decode = appErr.Details
	default:
		return nil
	}
	var attempts []Attempt
	if decode(&attempts) != nil {
		return nil // not the Chat activity's details
	}
	return attempts
}

// chargeTool charges a tool call before it runs; tool prices are exact.
func (r *agentRun) chargeTool(op, detail string) error {
	price := r.in.ToolPrices[op]
	res, err := r.budget.Reserve("tool "+op, price, 0)
	if err != nil {
		return &stopError{store.RunBudgetExceeded, CodeBudget, err}
	}
	r.budget.Settle(res, price, 0)
	r.calls = append(r.calls, store.Call{Seq: int64(len(r.calls) + 1), Kind: "tool", Name: op + ":" + detail, CostUSD: price})
	return nil
}

func (r *agentRun) toolCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: r.in.CallTimeout,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: []string{ErrTypeRestricted}},
	})
}

// search runs the queries in parallel and goes on as soon as it has
// EnoughResults distinct hits or SearchDeadline has passed, cancelling the
// searches still running.
func (r *agentRun) search(ctx workflow.Context, queries []string) ([]tools.Hit, error) {
	sctx, cancel := workflow.WithCancel(r.toolCtx(ctx))
	defer cancel()
	var a *Activities
	sel := workflow.NewSelector(ctx)
	pending := 0
	var hits []tools.Hit
	seen := map[string]bool{}
	var failures []string
	for _, q := range queries {
		if err := r.chargeTool(tools.OpSearch, q); err != nil {
			if pending == 0 {
				return nil, err
			}
			break // search with what the budget allowed
		}
		pending++
		sel.AddFuture(workflow.ExecuteActivity(sctx, a.Search, q), func(f workflow.Future) {
			pending--
			var got []tools.Hit
			if err := f.Get(ctx, &got); err != nil {
				failures = append(failures, err.Error())
				return
			}
			for _, h := range got {
				if !seen[h.ID] {
					seen[h.ID] = true
					hits = append(hits, h)
				}
			}
		})
	}
	deadline := false
	if r.in.SearchDeadline > 0 {
		sel.AddFuture(workflow.NewTimer(sctx, r.in.SearchDeadline), func(workflow.Future) { deadline = true })
	}
	for pending > 0 && !deadline && len(hits) < r.in.EnoughResults {
		sel.Select(ctx)
		if s := r.stopped(ctx.Err()); s != nil {
			return nil, s
		}
	}
	if len(hits) == 0 && len(failures) > 0 {
		return nil, &stopError{store.RunFailed, CodeTool, fmt.Errorf("every search failed: %s", failures[0])}
	}
	return hits, nil
}

// fetch reads the two best hits in parallel.
func (r *agentRun) fetch(ctx workflow.Context, hits []tools.Hit) ([]string, error) {
	var a *Activities
	actx := r.toolCtx(ctx)
	var fs []workflow.Future
	for _, h := range hits[:min(2, len(hits))] {
		if err := r.chargeTool(tools.OpFetch, h.ID); err != nil {
			return nil, err
		}
		fs = append(fs, workflow.ExecuteActivity(actx, a.Fetch, "corpus:"+h.ID))
	}
	var sources []string
	for _, h := range hits {
		sources = append(sources, "- "+h.Title+": "+h.Snippet)
	}
	for i, f := range fs {
		var text string
		if err := f.Get(ctx, &text); err != nil {
			if s := r.stopped(err); s != nil {
				return nil, s
			}
			continue // the snippet stands in for a document that would not load
		}
		sources[i] = "- " + strings.Join(strings.Fields(text), " ") // the document starts with its title
	}
	return sources, nil
}

func (r *agentRun) deliver(ctx workflow.Context, op, report string) error {
	if err := r.chargeTool(op, "report"); err != nil {
		return err
	}
	var a *Activities
	err := workflow.ExecuteActivity(r.toolCtx(ctx), a.Deliver, DeliverInput{
		Operation: op, Background: r.in.Background, ApprovedOperations: r.in.ApprovedOperations,
		RunID: r.in.RunID, ScheduleID: r.in.ScheduleID, Report: report,
	}).Get(ctx, nil)
	if err == nil {
		return nil
	}
	if s := r.stopped(err); s != nil {
		return s
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == ErrTypeRestricted {
		return &stopError{store.RunFailed, CodeRestricted, err}
	}
	return &stopError{store.RunFailed, CodeTool, fmt.Errorf("deliver by %s: %w", op, err)}
}

func (r *agentRun) result(report string, err error) ResearchResult {
	res := ResearchResult{
		Status: store.RunCompleted, Report: report, Budget: r.budget, PromptTokens: r.prompt,
		CompletionTokens: r.complete, Model: r.model, Calls: r.calls,
	}
	if res.Model == "" {
		res.Model = r.in.Model
	}
	if err == nil {
		return res
	}
	var se *stopError
	if !errors.As(err, &se) {
		if se = r.stopped(err); se == nil {
			se = &stopError{store.RunFailed, "", err}
		}
	}
	res.Status, res.ErrorCode, res.Error = se.status, se.code, se.err.Error()
	return res
}
