package vr

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
)

// recordSchemaEnv, when set to 1, makes TestVR04 record its fixtures again
// with the v1 code (schema_v1.go) before measuring: that is how
// fixtures/payloads/vr04 is produced.
const recordSchemaEnv = "DURABENCH_RECORD_VR04"

// schemaFixtureDir holds the payloads and histories v1 code wrote.
const schemaFixtureDir = "fixtures/payloads/vr04"

// The committed fixtures.
const (
	orderPayloadFile   = "order-v1.payload.json"
	invoicePayloadFile = "invoice-v1.payload.json"
	orderHistoryFile   = "order-v1.history.json"
	invoiceHistoryFile = "invoice-v1.history.json"
	codecHistoryFile   = "order-before-codec.history.json"
)

// schemaV1Invoice is the committed v1 invoice payload's content.
var schemaV1Invoice = schemaInvoiceV1{Number: "inv-7", Customer: "Ada Lovelace", Total: "12.50"}

// schemaBeforeCodec is the input of the history recorded before the codec.
var schemaBeforeCodec = schemaOrder{ID: "o-1002", CustomerName: "Katherine Johnson", Amount: 990, Currency: "USD"}

// payloadJSON reads and writes a payload as Temporal's JSON does with
// payload shorthand on: a json/plain payload is its JSON value.
var payloadJSON = map[string]any{commonpb.EnablePayloadShorthandMetadataKey: true}

// TestVR04 measures schema evolution: payloads v1 code wrote (committed JSON)
// decoded into evolved types by the SDK's data converter in a workflow and an
// activity on the server, old histories replayed against the new types, a
// custom payload converter end to end, an incompatible change failing loudly,
// an upcasting converter, and a codec added without losing old payloads.
func TestVR04(t *testing.T) {
	env := harness.Get(t)
	if os.Getenv(recordSchemaEnv) == "1" {
		recordSchemaFixtures(t)
	}
	fx := loadSchemaFixtures(t, filepath.Join(env.Root, schemaFixtureDir))
	plain := env.Dial(t) // the SDK's default data converter
	plainTQ := harness.TaskQueue(t)
	startSchemaWorker(t, plain, plainTQ, registerSchemaWorker)

	fields := observeFields(t, plain, plainTQ, fx)
	t.Run("field_added", func(t *testing.T) {
		check := env.Check(t, "VR-04.field-added")
		harness.Decide(check, fieldAddedPredicate, fields, fields.describe(fx, "currency"), fields.metrics())
	})
	t.Run("field_removed", func(t *testing.T) {
		check := env.Check(t, "VR-04.field-removed")
		harness.Decide(check, fieldRemovedPredicate, fields, fields.describe(fx, "coupon"), fields.metrics())
	})
	t.Run("field_renamed", func(t *testing.T) {
		check := env.Check(t, "VR-04.field-renamed")
		detail := fmt.Sprintf("%s; committed v1 history %s (%s; v1 input %s) replayed against v2: %s",
			fields.describe(fx, "customer"), orderHistoryFile, fx.recorded(), firstInput(fx.orderHistory), fields.replay.describe())
		harness.Decide(check, fieldRenamedPredicate, fields, detail, fields.metrics())
	})
	t.Run("custom_converter", testCustomConverter)
	t.Run("incompatible_fails_loudly", func(t *testing.T) { testIncompatible(t, plain, plainTQ, fx) })
	t.Run("upcast_converter", func(t *testing.T) { testUpcast(t, fx) })
	t.Run("codec_change", func(t *testing.T) { testCodecChange(t, plain, fx) })
}

// schemaFixtures are the committed payloads and histories.
type schemaFixtures struct {
	manifest                               schemaManifest
	order, invoice                         *commonpb.Payload
	orderHistory, invoiceHistory, preCodec *historypb.History
}

// schemaManifest names the fixtures and how they were recorded.
type schemaManifest struct {
	Recorded      time.Time           `json:"recorded"`
	SDKVersion    string              `json:"sdk_version"`
	ServerVersion string              `json:"server_version"`
	Command       string              `json:"command"`
	Files         []schemaFixtureFile `json:"files"`
}

type schemaFixtureFile struct {
	File       string `json:"file"`
	What       string `json:"what"`
	WrittenBy  string `json:"written_by"`
	WorkflowID string `json:"workflow_id,omitempty"`
}

// recorded says when and on what the fixtures were recorded.
func (fx schemaFixtures) recorded() string {
	m := fx.manifest
	return fmt.Sprintf("recorded %s with SDK %s and server %s", m.Recorded.Format(time.DateOnly), m.SDKVersion, m.ServerVersion)
}

func loadSchemaFixtures(t *testing.T, dir string) schemaFixtures {
	t.Helper()
	var fx schemaFixtures
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatalf("harness: VR-04 fixture manifest: %v", err)
	}
	if err := json.Unmarshal(b, &fx.manifest); err != nil {
		t.Fatalf("harness: VR-04 fixture manifest: %v", err)
	}
	fx.order = readPayload(t, filepath.Join(dir, orderPayloadFile))
	fx.invoice = readPayload(t, filepath.Join(dir, invoicePayloadFile))
	fx.orderHistory = readHistory(t, filepath.Join(dir, orderHistoryFile))
	fx.invoiceHistory = readHistory(t, filepath.Join(dir, invoiceHistoryFile))
	fx.preCodec = readHistory(t, filepath.Join(dir, codecHistoryFile))
	// The fixtures must be what v1 wrote, or the checks would measure nothing.
	var order schemaOrderV1
	keys := payloadKeys(fx.order.GetData())
	if err := json.Unmarshal(fx.order.GetData(), &order); err != nil || order != schemaV1Order || slices.Contains(keys, "currency") || slices.Contains(keys, "customer_name") {
		t.Fatalf("harness: %s is not the v1 order %+v: %s (%v)", orderPayloadFile, schemaV1Order, fx.order.GetData(), err)
	}
	var inv schemaInvoiceV1
	if err := json.Unmarshal(fx.invoice.GetData(), &inv); err != nil || inv != schemaV1Invoice {
		t.Fatalf("harness: %s is not the v1 invoice %+v: %s (%v)", invoicePayloadFile, schemaV1Invoice, fx.invoice.GetData(), err)
	}
	return fx
}

func readPayload(t *testing.T, path string) *commonpb.Payload {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	p := &commonpb.Payload{}
	if err := (temporalproto.CustomJSONUnmarshalOptions{Metadata: payloadJSON}).Unmarshal(b, p); err != nil {
		t.Fatalf("harness: payload %s: %v", path, err)
	}
	return p
}

func readHistory(t *testing.T, path string) *historypb.History {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("harness: history %s: %v", path, err)
	}
	return h
}

// dialWith dials the package's server with data converter dc; workers
// started on the client use it too.
func dialWith(t *testing.T, dc converter.DataConverter) client.Client {
	t.Helper()
	o := harness.Get(t).Options
	o.DataConverter = dc
	o.Logger = harness.TestLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, o)
	if err != nil {
		t.Fatalf("harness: dial %s: %v", o.HostPort, err)
	}
	t.Cleanup(c.Close)
	return c
}

func startSchemaWorker(t *testing.T, c client.Client, tq string, register func(worker.Registry)) {
	t.Helper()
	w := worker.New(c, tq, worker.Options{})
	register(w)
	if err := w.Start(); err != nil {
		t.Fatalf("harness: worker on %s: %v", tq, err)
	}
	t.Cleanup(w.Stop)
}

// observeFields starts a decode workflow with the committed v1 order payload
// as both its typed input and the raw input of its activity, and replays the
// committed v1 order history against v2.
func observeFields(t *testing.T, c client.Client, tq string, fx schemaFixtures) fieldObs {
	t.Helper()
	ctx := harness.Context(t, 30*time.Second)
	o := fieldObs{}
	if err := json.Unmarshal(fx.order.GetData(), &o.recorded); err != nil {
		t.Fatalf("harness: %v", err)
	}
	id := harness.UniqueID(t, "vr04-fields")
	raw := converter.NewRawValue(fx.order)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tq}, schemaDecodeOrder, raw, raw)
	if err != nil {
		t.Fatalf("harness: start %s: %v", schemaDecodeOrder, err)
	}
	var out schemaDecoded[schemaOrder]
	runErr := harness.AwaitResult(ctx, run, &out)
	events, err := harness.History(ctx, c, id, run.GetRunID())
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	keys := resultKeys(events)
	o.decoded = []decodedOrder{
		{where: "workflow input", got: out.Workflow, keys: keys["workflow"]},
		{where: "activity input", got: out.Activity, keys: keys["activity"]},
	}
	if runErr != nil {
		for i := range o.decoded {
			o.decoded[i].err = runErr.Error()
		}
	}
	r, err := newSchemaReplayer(converter.GetDefaultDataConverter())
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	o.replay = r.replay(fx.orderHistory)
	return o
}

func (o fieldObs) describe(fx schemaFixtures, field string) string {
	var parts []string
	for _, d := range o.decoded {
		s := fmt.Sprintf("%s decoded to %+v, written back with keys %v", d.where, d.got, d.keys)
		if d.err != "" {
			s = fmt.Sprintf("%s failed: %s", d.where, d.err)
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("committed v1 payload %s %s (field %q: %s) given to a workflow and an activity typed schemaOrder (default converter): %s",
		orderPayloadFile, fx.order.GetData(), field, presence(fx.order.GetData(), field), strings.Join(parts, "; "))
}

func (o fieldObs) metrics() map[string]float64 {
	n := 0
	for _, d := range o.decoded {
		if d.err == "" {
			n++
		}
	}
	return map[string]float64{"decodings": float64(len(o.decoded)), "decoded_ok": float64(n)}
}

func (r schemaReplay) describe() string {
	if r.Err != "" {
		return "error " + r.Err
	}
	return fmt.Sprintf("no error, returned %+v, recorded %+v", r.Result, r.Recorded)
}

// presence says whether a JSON object has the key.
func presence(data []byte, key string) string {
	if slices.Contains(payloadKeys(data), key) {
		return "present"
	}
	return "absent"
}

// payloadKeys are the keys of a JSON object, sorted.
func payloadKeys(data []byte) []string {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return []string{""}
	}
	return slices.Sorted(maps.Keys(m))
}

// resultKeys are the keys of each member of the JSON object a run returned.
func resultKeys(events []*historypb.HistoryEvent) map[string][]string {
	out := map[string][]string{}
	for _, ev := range harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED) {
		for _, p := range ev.GetWorkflowExecutionCompletedEventAttributes().GetResult().GetPayloads() {
			var m map[string]json.RawMessage
			if json.Unmarshal(p.GetData(), &m) != nil {
				continue
			}
			for k, v := range m {
				out[k] = payloadKeys(v)
			}
		}
	}
	return out
}

// firstInput is the data of a history's first input payload.
func firstInput(h *historypb.History) string {
	in := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	if len(in) == 0 {
		return "(none)"
	}
	return string(in[0].GetData())
}

// payloadsOf lists the input and result payloads of a run's history as the
// server returned them (undecoded).
func payloadsOf(events []*historypb.HistoryEvent) []payloadSeen {
	var out []payloadSeen
	add := func(event string, ps *commonpb.Payloads) {
		for _, p := range ps.GetPayloads() {
			s := payloadSeen{event: event, encoding: string(p.GetMetadata()[converter.MetadataEncoding])}
			var e envelope
			if s.encoding == envelopeEncoding && json.Unmarshal(p.GetData(), &e) == nil {
				s.envType = e.Type
			}
			out = append(out, s)
		}
	}
	for _, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			add("WorkflowExecutionStarted.input", ev.GetWorkflowExecutionStartedEventAttributes().GetInput())
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			add("ActivityTaskScheduled.input", ev.GetActivityTaskScheduledEventAttributes().GetInput())
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			add("ActivityTaskCompleted.result", ev.GetActivityTaskCompletedEventAttributes().GetResult())
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			add("WorkflowExecutionCompleted.result", ev.GetWorkflowExecutionCompletedEventAttributes().GetResult())
		}
	}
	return out
}

func describePayloads(ps []payloadSeen) string {
	var parts []string
	for _, p := range ps {
		s := p.event + " " + p.encoding
		if p.envType != "" {
			s += " (envelope of " + p.envType + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func testCustomConverter(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "VR-04.custom-converter")
	ctx := harness.Context(t, 30*time.Second)
	c := dialWith(t, envelopeDataConverter())
	tq := harness.TaskQueue(t)
	startSchemaWorker(t, c, tq, registerSchemaWorker)
	order := schemaOrder{ID: "o-2001", CustomerName: "Grace Hopper", Amount: 4200, Currency: "EUR"}
	o := envelopeObs{want: schemaReceipt{OrderID: order.ID, Customer: order.CustomerName, Charged: order.Amount}}
	id := harness.UniqueID(t, "vr04-envelope")
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tq}, schemaOrderWorkflow, order)
	if err != nil {
		t.Fatalf("harness: start: %v", err)
	}
	if err := harness.AwaitResult(ctx, run, &o.got); err != nil {
		o.err = err.Error()
	}
	events, err := harness.History(ctx, c, id, run.GetRunID())
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	o.payloads = payloadsOf(events)
	var sample string
	if in := events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads(); len(in) > 0 {
		sample = string(in[0].GetData())
	}
	detail := fmt.Sprintf("order workflow and its activity on a client and worker whose data converter writes %s envelopes: history payloads %s; the input as stored: %s; receipt %+v (want %+v, error %q)",
		envelopeEncoding, describePayloads(o.payloads), sample, o.got, o.want, o.err)
	harness.Decide(check, customConverterPredicate, o, detail, map[string]float64{"payloads": float64(len(o.payloads))})
}

// testIncompatible gives the v1 invoice, whose total is a string, to a
// workflow and to an activity typed schemaInvoice (total int64), through the
// default converter, and reads from the history what became of each run.
func testIncompatible(t *testing.T, c client.Client, tq string, fx schemaFixtures) {
	env := harness.Get(t)
	check := env.Check(t, "VR-04.incompatible-fails-loudly")
	ctx := harness.Context(t, 30*time.Second)
	raw := converter.NewRawValue(fx.invoice)
	valid := schemaInvoice{Number: "inv-8", Customer: "Ada Lovelace", Total: 1250} // a v2 invoice: the workflow input decodes, the activity's does not
	o := incompatibleObs{field: "schemaInvoice.total", goType: "int64"}
	var details []string
	for _, p := range []struct {
		where string
		input any
		from  []enumspb.EventType // where the decoding failure is recorded
	}{
		{"workflow input", raw, []enumspb.EventType{enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED}},
		{"activity input", valid, []enumspb.EventType{enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED}},
	} {
		id := harness.UniqueID(t, "vr04-incompatible")
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tq}, schemaDecodeInvoice, p.input, raw)
		if err != nil {
			t.Fatalf("harness: start: %v", err)
		}
		events := awaitOutcome(ctx, t, c, id, run.GetRunID())
		lp := loudPath{where: p.where}
		for _, typ := range p.from {
			if evs := harness.EventsOf(events, typ); len(evs) > 0 && lp.failure == "" {
				lp.failure = failureText(eventFailure(evs[0]))
			}
		}
		if done := harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED); len(done) > 0 {
			lp.completed = true
			var out schemaDecoded[schemaInvoice]
			if err := converter.GetDefaultDataConverter().FromPayloads(done[0].GetWorkflowExecutionCompletedEventAttributes().GetResult(), &out); err == nil {
				lp.total = out.Workflow.Total
				if p.where == "activity input" {
					lp.total = out.Activity.Total
				}
			}
		}
		closing := events[len(events)-1].GetEventType().String()
		o.paths = append(o.paths, lp)
		details = append(details, fmt.Sprintf("%s: failure %q, last event %s, completed %t (total %d)", p.where, lp.failure, closing, lp.completed, lp.total))
	}
	detail := fmt.Sprintf("committed v1 invoice %s %s decoded as schemaInvoice (total int64) by the default converter; %s",
		invoicePayloadFile, fx.invoice.GetData(), strings.Join(details, "; "))
	harness.Decide(check, incompatiblePredicate, o, detail, map[string]float64{"runs": float64(len(o.paths))})
}

// awaitOutcome waits until a run has closed or a workflow task has failed,
// terminates it if it is still open, and returns its history.
func awaitOutcome(ctx context.Context, t *testing.T, c client.Client, id, runID string) []*historypb.HistoryEvent {
	t.Helper()
	var events []*historypb.HistoryEvent
	closed := false
	err := harness.WaitFor(ctx, 20*time.Second, 50*time.Millisecond, "run "+id+" to close or fail a workflow task", func(ctx context.Context) (bool, error) {
		var err error
		if events, err = harness.History(ctx, c, id, runID); err != nil {
			return false, err
		}
		last := events[len(events)-1].GetEventType()
		closed = last >= enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED && last <= enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT ||
			last == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED || last == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED ||
			last == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
		return closed || len(harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED)) > 0, nil
	})
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	if !closed {
		if err := c.TerminateWorkflow(ctx, id, runID, "VR-04: outcome observed"); err != nil {
			t.Fatalf("harness: terminate %s: %v", id, err)
		}
	}
	return events
}

// eventFailure is the failure an event carries, nil if none.
func eventFailure(ev *historypb.HistoryEvent) *failurepb.Failure {
	switch ev.GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
		return ev.GetWorkflowTaskFailedEventAttributes().GetFailure()
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
		return ev.GetWorkflowExecutionFailedEventAttributes().GetFailure()
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
		return ev.GetActivityTaskFailedEventAttributes().GetFailure()
	}
	return nil
}

// failureText is a failure's message, with its application type and
// whether it may be retried. Its causes are left out: the SDK records each
// wrapped error as a cause, which repeats the message.
func failureText(f *failurepb.Failure) string {
	if f == nil {
		return ""
	}
	info := f.GetApplicationFailureInfo()
	return fmt.Sprintf("%s [type %s, non-retryable %t]", f.GetMessage(), info.GetType(), info.GetNonRetryable())
}

func testUpcast(t *testing.T, fx schemaFixtures) {
	env := harness.Get(t)
	check := env.Check(t, "VR-04.upcast-converter")
	ctx := harness.Context(t, 30*time.Second)
	dc := upcastingDataConverter()
	c := dialWith(t, dc)
	tq := harness.TaskQueue(t)
	startSchemaWorker(t, c, tq, registerSchemaWorker)
	o := upcastObs{want: schemaInvoice{Number: schemaV1Invoice.Number, Customer: strings.ToUpper(schemaV1Invoice.Customer), Total: 1250}} // "12.50" euros
	id := harness.UniqueID(t, "vr04-upcast")
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tq}, schemaInvoiceWorkflow, converter.NewRawValue(fx.invoice))
	if err != nil {
		t.Fatalf("harness: start: %v", err)
	}
	if err := harness.AwaitResult(ctx, run, &o.live); err != nil {
		o.liveErr = err.Error()
	}
	events, err := harness.History(ctx, c, id, run.GetRunID())
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	var versions []string
	for _, ev := range events {
		var ps *commonpb.Payloads
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			ps = ev.GetWorkflowExecutionStartedEventAttributes().GetInput()
			o.inputVersion = string(ps.GetPayloads()[0].GetMetadata()[schemaVersionKey])
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			ps = ev.GetActivityTaskScheduledEventAttributes().GetInput()
		default:
			continue
		}
		for _, p := range ps.GetPayloads() {
			versions = append(versions, fmt.Sprintf("%s %s (version %q)", ev.GetEventType(), p.GetData(), p.GetMetadata()[schemaVersionKey]))
		}
	}
	r, err := newSchemaReplayer(dc)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	o.replay = r.replay(fx.invoiceHistory)
	detail := fmt.Sprintf("live run given the committed v1 invoice %s through the upcasting converter: returned %+v (want %+v, error %q), history inputs %s; committed v1 history %s (%s) replayed against v2 with the upcasting converter: %s",
		invoicePayloadFile, o.live, o.want, o.liveErr, strings.Join(versions, ", "), invoiceHistoryFile, fx.recorded(), o.replay.describe())
	harness.Decide(check, upcastPredicate, o, detail, nil)
}

// testCodecChange replays the history committed before the codec with a
// converter that has it, and lets a worker with the codec finish a run
// started by a client without it.
func testCodecChange(t *testing.T, plain client.Client, fx schemaFixtures) {
	env := harness.Get(t)
	check := env.Check(t, "VR-04.codec-change")
	ctx := harness.Context(t, 30*time.Second)
	dc := codecDataConverter()
	r, err := newSchemaReplayer(dc)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	o := codecObs{before: r.replay(fx.preCodec)}
	order := schemaOrder{ID: "o-2001", CustomerName: "Grace Hopper", Amount: 4200, Currency: "EUR"}
	o.want = schemaReceipt{OrderID: order.ID, Customer: order.CustomerName, Charged: order.Amount}
	tq := harness.TaskQueue(t)
	id := harness.UniqueID(t, "vr04-codec")
	// Started without the codec, before any worker polls the queue.
	run, err := plain.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tq}, schemaOrderWorkflow, order)
	if err != nil {
		t.Fatalf("harness: start: %v", err)
	}
	c := dialWith(t, dc)
	startSchemaWorker(t, c, tq, registerSchemaWorker)
	if err := harness.AwaitResult(ctx, c.GetWorkflow(ctx, id, run.GetRunID()), &o.live); err != nil {
		o.liveErr = err.Error()
	}
	events, err := harness.History(ctx, c, id, run.GetRunID())
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	o.payloads = payloadsOf(events)
	o.liveReplay = r.replay(&historypb.History{Events: events})
	detail := fmt.Sprintf("codec: the SDK's zlib codec (AlwaysEncode) over the default converter; history %s written before it (%s; input %s) replayed with it: %s; a run started by a client without the codec and finished by a worker with it: payloads %s, receipt %+v (want %+v, error %q), its history replayed with the codec: %s",
		codecHistoryFile, fx.recorded(), firstInput(fx.preCodec), o.before.describe(), describePayloads(o.payloads), o.live, o.want, o.liveErr, o.liveReplay.describe())
	harness.Decide(check, codecPredicate, o, detail, map[string]float64{"payloads": float64(len(o.payloads))})
}

// recordSchemaFixtures writes the v1 payloads, runs the v1 workflows with
// them and a v2 workflow without a codec on the server, and writes their
// histories and a manifest to fixtures/payloads/vr04.
func recordSchemaFixtures(t *testing.T) {
	env := harness.Get(t)
	ctx := harness.Context(t, time.Minute)
	dir := filepath.Join(env.Root, schemaFixtureDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := env.Dial(t)
	info, err := c.WorkflowService().GetSystemInfo(ctx, &workflowservice.GetSystemInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	m := schemaManifest{
		Recorded: time.Now().UTC().Truncate(time.Second), SDKVersion: temporal.SDKVersion, ServerVersion: info.GetServerVersion(),
		Command: recordSchemaEnv + "=1 go test ./scenarios/vr -run '^TestVR04$' -count=1",
	}
	dc := converter.GetDefaultDataConverter()
	payload := func(file string, v any) *commonpb.Payload {
		p, err := dc.ToPayload(v)
		if err != nil {
			t.Fatal(err)
		}
		b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  ", Metadata: payloadJSON}.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		writeFixture(t, filepath.Join(dir, file), b)
		m.Files = append(m.Files, schemaFixtureFile{File: file, What: fmt.Sprintf("payload of a %T", v), WrittenBy: "v1 code, the SDK's default data converter"})
		return p
	}
	order := payload(orderPayloadFile, schemaV1Order)
	invoice := payload(invoicePayloadFile, schemaV1Invoice)
	history := func(tq, file, workflowType, by string, args ...any) {
		id := harness.UniqueID(t, "vr04-record")
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tq}, workflowType, args...)
		if err != nil {
			t.Fatal(err)
		}
		if err := run.Get(ctx, nil); err != nil {
			t.Fatalf("recording %s: %v", file, err)
		}
		events, err := harness.History(ctx, c, id, run.GetRunID())
		if err != nil {
			t.Fatal(err)
		}
		b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
		if err != nil {
			t.Fatal(err)
		}
		writeFixture(t, filepath.Join(dir, file), b)
		m.Files = append(m.Files, schemaFixtureFile{File: file, What: "history of a " + workflowType + " run", WrittenBy: by, WorkflowID: id})
	}
	v1 := harness.TaskQueue(t)
	startSchemaWorker(t, c, v1, registerSchemaWorkerV1)
	history(v1, orderHistoryFile, schemaOrderWorkflow, "v1 code, the SDK's default data converter", converter.NewRawValue(order))
	history(v1, invoiceHistoryFile, schemaInvoiceWorkflow, "v1 code, the SDK's default data converter", converter.NewRawValue(invoice))
	v2 := harness.TaskQueue(t)
	startSchemaWorker(t, c, v2, registerSchemaWorker)
	history(v2, codecHistoryFile, schemaOrderWorkflow, "v2 code, the SDK's default data converter (no codec)", schemaBeforeCodec)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFixture(t, filepath.Join(dir, "manifest.json"), b)
	t.Logf("wrote %d VR-04 fixtures to %s", len(m.Files), dir)
}

func writeFixture(t *testing.T, path string, b []byte) {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\n")) {
		b = append(b, '\n')
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
