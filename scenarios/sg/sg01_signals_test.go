package sg

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/stats"
)

// TestSG01 measures external signals: delivery with payload, order, and
// durability while the worker or the server is down, rejection of signals to
// closed workflows, loss and duplication under concurrent load, and request
// id deduplication.
func TestSG01(t *testing.T) {
	env := harness.Get(t)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	startWorker(t, c, tq, worker.Options{})
	s := signals{c: c, tq: tq}

	t.Run("signal_delivered", s.testDelivered)
	t.Run("signal_order", s.testOrder)
	t.Run("worker_down", testWorkerDown)
	t.Run("server_restart", testServerRestart)
	t.Run("closed_target_rejected", s.testClosedTarget)
	t.Run("no_loss_under_load", s.testUnderLoad)
	t.Run("request_id_dedup", s.testRequestIDDedup)
}

// signals runs CollectWorkflows on a task queue served by an in-process worker.
type signals struct {
	c  client.Client
	tq string
}

func (s signals) collector(ctx context.Context, t *testing.T, expect int) client.WorkflowRun {
	t.Helper()
	return start(ctx, t, s.c, startOptions(s.tq, harness.UniqueID(t, "wf")), CollectWorkflow, CollectInput{Expect: expect})
}

// send signals items seq from..to-1 of one sender, one after another.
func send(ctx context.Context, c client.Client, id string, sender, from, to int) error {
	for seq := from; seq < to; seq++ {
		it := Item{Sender: sender, Seq: seq, Body: fmt.Sprintf("event %d/%d", sender, seq), SentAt: time.Now()}
		if err := c.SignalWorkflow(ctx, id, "", itemSignal, it); err != nil {
			return fmt.Errorf("signal %d/%d: %w", sender, seq, err)
		}
	}
	return nil
}

// seqs lists the sequence numbers received, for details.
func seqs(got []Received) []int {
	out := make([]int, len(got))
	for i, r := range got {
		out[i] = r.Seq
	}
	return out
}

func (s signals) testDelivered(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-01.signal-delivered")
	ctx := harness.Context(t, time.Minute)
	run := s.collector(ctx, t, 1)
	o := payload{sent: Item{Sender: 7, Seq: 0, Body: "order #4711 paid", SentAt: time.Now()}}
	o.err = s.c.SignalWorkflow(ctx, run.GetID(), "", itemSignal, o.sent)
	if o.err == nil {
		o.err = run.Get(ctx, &o.got)
	}
	received := "nothing"
	if len(o.got) > 0 {
		g := o.got[0]
		received = fmt.Sprintf("%d item(s), the first {sender %d, seq %d, body %q} %s after the send", len(o.got), g.Sender, g.Seq, g.Body,
			g.At.Sub(o.sent.SentAt).Round(time.Millisecond))
	}
	harness.Decide(check, deliveredPredicate, o, fmt.Sprintf("signal %q with payload {sender %d, seq %d, body %q} sent to running workflow %s; "+
		"the workflow received %s (error: %v)", itemSignal, o.sent.Sender, o.sent.Seq, o.sent.Body, run.GetID(), received, o.err), nil)
}

func (s signals) testOrder(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-01.signal-order")
	ctx := harness.Context(t, 2*time.Minute)
	const n = 100
	run := s.collector(ctx, t, n)
	var o sequence
	o.err = send(ctx, s.c, run.GetID(), 0, 0, n)
	var got []Received
	if o.err == nil {
		o.err = run.Get(ctx, &got)
	}
	o.d = analyse(1, n, got)
	harness.Decide(check, orderPredicate, o, fmt.Sprintf("%d signals sent one after another to a running workflow: %s (error: %v); first received %v",
		n, o.d, o.err, seqs(got[:min(10, len(got))])), o.d.metrics())
}

func testWorkerDown(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "SG-01.worker-down")
	ctx := harness.Context(t, 2*time.Minute)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	first := startChildWorker(t, env.Options.HostPort, tq)
	const n = 30
	run := start(ctx, t, c, startOptions(tq, harness.UniqueID(t, "wf")), CollectWorkflow, CollectInput{Expect: n + 1})
	// Signal 0 goes to the live worker; the query proves the worker took it.
	if err := send(ctx, c, run.GetID(), 0, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := harness.WaitFor(ctx, time.Minute, 50*time.Millisecond, "the worker to receive signal 0", func(ctx context.Context) (bool, error) {
		var got []Received
		return query(ctx, c, run.GetID(), receivedQuery, &got) == nil && len(got) == 1, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := first.Kill(); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	o := workerDown{whileDown: n}
	o.err = send(ctx, c, run.GetID(), 0, 1, n+1)
	events, _, err := countEvents(ctx, c, run.GetID())
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	o.historySignals = events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
	second := startChildWorker(t, env.Options.HostPort, tq)
	var got []Received
	if o.err == nil {
		o.err = run.Get(ctx, &got)
	}
	o.d = analyse(1, n+1, got)
	harness.Decide(check, workerDownPredicate, o, fmt.Sprintf(
		"worker pid %d SIGKILLed after it received signal 0; %d signals sent with no worker running, history held %d signal events "+
			"before worker pid %d started; then: %s (error: %v)",
		first.PID(), o.whileDown, o.historySignals, second.PID(), o.d, o.err), o.d.metrics())
}

func testServerRestart(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "SG-01.server-restart")
	ctx := harness.Context(t, 3*time.Minute)
	srv, killable := env.KillableServer(t, harness.ServerOptions{}, check)
	if !killable {
		return
	}
	check.OnServer(srv)
	c := srv.Dial(t)
	tq := harness.TaskQueue(t)
	const n = 30
	// No worker yet: every accepted signal is only in the server's database
	// when the server dies.
	run := start(ctx, t, c, startOptions(tq, harness.UniqueID(t, "wf")), CollectWorkflow, CollectInput{Expect: n})
	if err := send(ctx, c, run.GetID(), 0, 0, n); err != nil {
		t.Fatal(err)
	}
	down := restartServer(t, srv)
	startWorker(t, c, tq, worker.Options{})
	var got []Received
	o := serverCrash{restarted: true}
	o.err = harness.AwaitResult(ctx, run, &got)
	o.d = analyse(1, n, got)
	harness.Decide(check, serverCrashPredicate, o, fmt.Sprintf(
		"%d signals accepted with no worker running, then the server (pid %d after the restart) was SIGKILLed and restarted on %s in %.1fs; "+
			"a worker started after the restart: %s (error: %v)", n, srv.PID(), srv.Persistence(), down.Seconds(), o.d, o.err),
		map[string]float64{"signals": n, "lost": float64(o.d.lost), "restart_s": down.Seconds()})
}

func (s signals) testClosedTarget(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-01.closed-target-rejected")
	ctx := harness.Context(t, time.Minute)
	run := s.collector(ctx, t, 1)
	if err := send(ctx, s.c, run.GetID(), 0, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("collector: %v", err)
	}
	d, err := s.c.DescribeWorkflowExecution(ctx, run.GetID(), "")
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	status := d.GetWorkflowExecutionInfo().GetStatus()
	o := closedSignal{closed: status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED}
	o.err = s.c.SignalWorkflow(ctx, run.GetID(), "", itemSignal, Item{Seq: 1})
	harness.Decide(check, closedTargetPredicate, o, fmt.Sprintf("workflow %s, status %s by describe: a signal to it returned %T: %v",
		run.GetID(), status, o.err, o.err), nil)
}

func (s signals) testUnderLoad(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-01.no-loss-under-load")
	ctx := harness.Context(t, 3*time.Minute)
	const senders, perSender = 10, 100
	run := s.collector(ctx, t, senders*perSender)
	errs := make([]error, senders)
	var wg sync.WaitGroup
	began := time.Now()
	for i := range senders {
		wg.Go(func() { errs[i] = send(ctx, s.c, run.GetID(), i, 0, perSender) })
	}
	wg.Wait()
	sendTime := time.Since(began)
	o := underLoad{senders: senders, err: errors.Join(errs...)}
	var got []Received
	if o.err == nil {
		// A lost signal would leave the run waiting: bound the wait and read
		// what arrived instead.
		getCtx, cancel := context.WithTimeout(ctx, time.Minute)
		if o.err = run.Get(getCtx, &got); o.err != nil {
			_ = query(ctx, s.c, run.GetID(), receivedQuery, &got)
		}
		cancel()
	}
	o.d = analyse(senders, perSender, got)
	lat := make([]float64, len(got))
	for i, r := range got {
		lat[i] = float64(r.At.Sub(r.SentAt)) / float64(time.Millisecond)
	}
	o.latency = stats.Summarize(lat)
	m := o.latency.Metrics("latency_ms")
	maps.Copy(m, o.d.metrics())
	m["send_s"] = sendTime.Seconds()
	harness.Decide(check, underLoadPredicate, o, fmt.Sprintf(
		"%d concurrent senders × %d signals to one workflow, sent in %.1fs: %s (error: %v); "+
			"delivery latency (send call to the workflow task that received it) over %d signals: p50 %.0fms (95%% interval %.0f-%.0f), p95 %.0fms, max %.0fms",
		senders, perSender, sendTime.Seconds(), o.d, o.err, o.latency.N, o.latency.P50, o.latency.P50Lo, o.latency.P50Hi, o.latency.P95, o.latency.Max), m)
}

func (s signals) testRequestIDDedup(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "SG-01.request-id-dedup")
	ctx := harness.Context(t, time.Minute)
	run := s.collector(ctx, t, 3)
	signal := func(requestID string, seq int) error {
		input, err := converter.GetDefaultDataConverter().ToPayloads(Item{Seq: seq, SentAt: time.Now()})
		if err != nil {
			return err
		}
		_, err = s.c.WorkflowService().SignalWorkflowExecution(ctx, &workflowservice.SignalWorkflowExecutionRequest{
			Namespace: env.Options.Namespace, WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: run.GetID()},
			SignalName: itemSignal, Input: input, RequestId: requestID, Identity: "sg-test",
		})
		return err
	}
	// Signal 0, a retry of the same request, then two signals with new
	// request ids: the run ends at its third item, so a duplicate shows as a
	// second 0 in place of 2.
	retried := uuid.NewString()
	var o requestRetry
	o.err = errors.Join(signal(retried, 0), signal(retried, 0), signal(uuid.NewString(), 1), signal(uuid.NewString(), 2))
	var got []Received
	if o.err == nil {
		o.err = run.Get(ctx, &got)
	}
	events, _, histErr := countEvents(ctx, s.c, run.GetID())
	o.received, o.signalEvents = seqs(got), events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
	o.err = errors.Join(o.err, histErr)
	harness.Decide(check, requestIDPredicate, o, fmt.Sprintf("signal 0 sent twice with request id %s, then signals 1 and 2 with new ids: "+
		"the workflow received %v; history has %d signal events (error: %v)",
		harness.ShortID(retried), o.received, o.signalEvents, o.err), nil)
}
