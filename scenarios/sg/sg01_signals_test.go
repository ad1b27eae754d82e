package sg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
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

// delivery compares what a collector received with what was sent: senders
// sent items 0..perSender-1 each.
type delivery struct {
	sent, received, lost, duplicated, outOfOrder int
}

func analyse(senders, perSender int, got []Received) delivery {
	d := delivery{sent: senders * perSender, received: len(got)}
	seen := map[[2]int]int{}
	last := map[int]int{}
	for _, r := range got {
		key := [2]int{r.Sender, r.Seq}
		seen[key]++
		if seen[key] > 1 {
			d.duplicated++
		}
		if prev, ok := last[r.Sender]; ok && r.Seq <= prev {
			d.outOfOrder++
		}
		last[r.Sender] = r.Seq
	}
	for s := range senders {
		for q := range perSender {
			if seen[[2]int{s, q}] == 0 {
				d.lost++
			}
		}
	}
	return d
}

func (d delivery) ok() bool {
	return d.received == d.sent && d.lost == 0 && d.duplicated == 0 && d.outOfOrder == 0
}

func (d delivery) String() string {
	return fmt.Sprintf("%d sent, %d received, %d lost, %d duplicated, %d out of order", d.sent, d.received, d.lost, d.duplicated, d.outOfOrder)
}

func (d delivery) metrics() map[string]float64 {
	return map[string]float64{"sent": float64(d.sent), "received": float64(d.received), "lost": float64(d.lost),
		"duplicated": float64(d.duplicated), "out_of_order": float64(d.outOfOrder)}
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
	sent := Item{Sender: 7, Seq: 0, Body: "order #4711 paid", SentAt: time.Now()}
	err := s.c.SignalWorkflow(ctx, run.GetID(), "", itemSignal, sent)
	var got []Received
	if err == nil {
		err = run.Get(ctx, &got)
	}
	ok := err == nil && len(got) == 1 && got[0].Sender == sent.Sender && got[0].Body == sent.Body
	received := "nothing"
	if len(got) > 0 {
		received = fmt.Sprintf("%d item(s), the first {sender %d, body %q} %s after the send", len(got), got[0].Sender, got[0].Body,
			got[0].At.Sub(sent.SentAt).Round(time.Millisecond))
	}
	check.Result(ok, fmt.Sprintf("signal %q with payload {sender 7, body %q} sent to a running workflow; the workflow received %s (error: %v)",
		itemSignal, sent.Body, received, err), nil)
}

func (s signals) testOrder(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-01.signal-order")
	ctx := harness.Context(t, 2*time.Minute)
	const n = 100
	run := s.collector(ctx, t, n)
	err := send(ctx, s.c, run.GetID(), 0, 0, n)
	var got []Received
	if err == nil {
		err = run.Get(ctx, &got)
	}
	d := analyse(1, n, got)
	check.Result(err == nil && d.ok(), fmt.Sprintf("%d signals sent one after another to a running workflow: %s (error: %v); first received %v",
		n, d, err, seqs(got[:min(10, len(got))])), d.metrics())
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
	if err := send(ctx, c, run.GetID(), 0, 1, n+1); err != nil {
		t.Fatal(err)
	}
	events, _, err := countEvents(ctx, c, run.GetID())
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	second := startChildWorker(t, env.Options.HostPort, tq)
	var got []Received
	err = run.Get(ctx, &got)
	d := analyse(1, n+1, got)
	check.Result(err == nil && d.ok() && events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED] == n+1, fmt.Sprintf(
		"worker pid %d SIGKILLed after it received signal 0; %d signals sent with no worker running, history held %d signal events; "+
			"worker pid %d started: %s (error: %v)",
		first.PID(), n, events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED], second.PID(), d, err), d.metrics())
}

func testServerRestart(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "SG-01.server-restart")
	ctx := harness.Context(t, 3*time.Minute)
	srv, killable := env.KillableServer(t, harness.ServerOptions{}, check)
	if !killable {
		return
	}
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
	err := harness.AwaitResult(ctx, run, &got)
	d := analyse(1, n, got)
	check.Result(err == nil && d.ok(), fmt.Sprintf(
		"%d signals accepted with no worker running, then the server was SIGKILLed and restarted on the same SQLite file (%.1fs); "+
			"a worker started after the restart: %s (error: %v)", n, down.Seconds(), d, err),
		map[string]float64{"signals": n, "lost": float64(d.lost), "restart_s": down.Seconds()})
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
	err := s.c.SignalWorkflow(ctx, run.GetID(), "", itemSignal, Item{Seq: 1})
	var nf *serviceerror.NotFound
	check.Result(errors.As(err, &nf), fmt.Sprintf("signal to the completed workflow %s returned %T: %v", run.GetID(), err, err), nil)
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
	err := errors.Join(errs...)
	var got []Received
	if err == nil {
		// A lost signal would leave the run waiting: bound the wait and read
		// what arrived instead.
		getCtx, cancel := context.WithTimeout(ctx, time.Minute)
		if err = run.Get(getCtx, &got); err != nil {
			_ = query(ctx, s.c, run.GetID(), receivedQuery, &got)
		}
		cancel()
	}
	d := analyse(senders, perSender, got)
	lat := make([]float64, len(got))
	for i, r := range got {
		lat[i] = float64(r.At.Sub(r.SentAt)) / float64(time.Millisecond)
	}
	sum := stats.Summarize(lat)
	m := sum.Metrics("latency_ms")
	for k, v := range d.metrics() {
		m[k] = v
	}
	m["send_s"] = sendTime.Seconds()
	check.Result(err == nil && d.ok(), fmt.Sprintf(
		"%d concurrent senders × %d signals to one workflow, sent in %.1fs: %s (error: %v); "+
			"delivery latency (send call to the workflow task that received it) p50 %.0fms, p95 %.0fms, max %.0fms",
		senders, perSender, sendTime.Seconds(), d, err, sum.P50, sum.P95, sum.Max), m)
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
	err := errors.Join(signal(retried, 0), signal(retried, 0), signal(uuid.NewString(), 1), signal(uuid.NewString(), 2))
	var got []Received
	if err == nil {
		err = run.Get(ctx, &got)
	}
	events, _, histErr := countEvents(ctx, s.c, run.GetID())
	received := seqs(got)
	ok := err == nil && histErr == nil && slices.Equal(received, []int{0, 1, 2}) && events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED] == 3
	check.Result(ok, fmt.Sprintf("signal 0 sent twice with request id %s, then signals 1 and 2 with new ids: the workflow received %v "+
		"(error: %v); history has %d signal events (error: %v)",
		harness.ShortID(retried), received, err, events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED], histErr), nil)
}
