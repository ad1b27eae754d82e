package pf

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/proto"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/evidence"
	"github.com/durabench/durabench/harness/stats"
)

// payloadAbove is an activity or workflow result above the 2 MiB limit
// (payloadDocumentedLimit) and below gRPC's 4 MiB default message limit, so
// that the blob limit is what refuses it.
const payloadAbove = 5 << 19

// Lowered limits of the dedicated server of the history-size scenario, small
// so that a run reaches them in seconds. The history throttled logger is
// raised from 4 lines a second so that the warning scenario sharing the
// server finds its line even while the history scenario logs.
var payloadLimitsConfig = map[string]string{
	"limit.historySize.error":                 "1048576",
	"limit.historySize.warn":                  "524288",
	"limit.historySize.suggestContinueAsNew":  "262144",
	"limit.historyCount.error":                "300",
	"limit.historyCount.warn":                 "150",
	"limit.historyCount.suggestContinueAsNew": "100",
	"history.throttledLogRPS":                 "1000",
}

// TestPF03 measures payload limits: the largest payload the server accepts,
// the errors and warnings around it, latency against payload size, carrying
// larger objects by a claim-check codec and by compression, the history size
// and event count limits, and what an oversized activity result does to a
// workflow. The bisection and the latency figures run first, alone; the rest
// runs in parallel.
func TestPF03(t *testing.T) {
	env := harness.Get(t)
	t.Run("limit_and_latency", testPayloadLimit)
	t.Run("claim_check", testPayloadClaimCheck)
	t.Run("compression_codec", testPayloadCompression)
	t.Run("oversized_result", testPayloadOversized)
	t.Run("lowered_limits", func(t *testing.T) {
		t.Parallel()
		if ok, why := env.CanKillServer(); !ok {
			env.Check(t, "PF-03.history-size-limit").NotMeasured(why + "; the history limits are measured on a dedicated server with lowered limits")
			t.Run("warning_threshold", func(t *testing.T) { testPayloadWarning(t, nil) })
			return
		}
		srv := env.StartServer(t, harness.ServerOptions{InMemory: true, DynamicConfig: payloadLimitsConfig})
		t.Run("warning_threshold", func(t *testing.T) {
			t.Parallel()
			testPayloadWarning(t, srv)
		})
		t.Run("history_size_limit", func(t *testing.T) {
			t.Parallel()
			testPayloadHistoryLimit(t, srv)
		})
	})
}

// payloadBisect finds the largest size in [lo, hi) that accept takes, given
// that it takes lo and refuses hi, both of which it probes first. It fills
// largest, steps and err; the encoded sizes are the caller's.
func payloadBisect(lo, hi int, accept func(int) (bool, error)) payloadBisection {
	s := payloadBisection{}
	probe := func(n int) (bool, error) {
		s.steps++
		return accept(n)
	}
	if ok, err := probe(lo); err != nil || !ok {
		s.err = payloadOr(err, fmt.Errorf("the smallest size tried, %d bytes, was refused", lo))
		return s
	}
	if ok, err := probe(hi); err != nil || ok {
		s.err = payloadOr(err, fmt.Errorf("%d bytes were accepted: the limit is higher than the range searched", hi))
		return s
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := probe(mid)
		if err != nil {
			s.err = err
			return s
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	s.largest = lo
	return s
}

// payloadOr returns err, or fallback when err is nil.
func payloadOr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

// payloadRefusal reports whether err is the server refusing a request for
// its size: InvalidArgument (the blob size limit) or ResourceExhausted
// (gRPC's message size limit).
func payloadRefusal(err error) bool {
	var ia *serviceerror.InvalidArgument
	var re *serviceerror.ResourceExhausted
	return errors.As(err, &ia) || errors.As(err, &re)
}

// payloadWireSize is the size of n bytes of data as the server measures it:
// the Payloads message the default data converter makes of a []byte.
func payloadWireSize(t *testing.T, n int) int {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayloads(make([]byte, n))
	if err != nil {
		t.Fatal(err)
	}
	return proto.Size(p)
}

func testPayloadLimit(t *testing.T) {
	env := harness.Get(t)
	found := env.Check(t, "PF-03.limit-found")
	above := env.Check(t, "PF-03.error-above-limit")
	ctx := harness.Context(t, 150*time.Second)
	c := payloadDial(t, env.Options, &payloadLog{})
	tq := harness.TaskQueue(t)
	// The SDK worker refuses on its own to send a result above the
	// namespace's limit; DisablePayloadErrorLimit leaves the judgement to the
	// server, whose limit is what is measured here.
	payloadWorker(t, c, tq, worker.Options{DisablePayloadErrorLimit: true})
	limit, limitSource := payloadStatedLimit(ctx, t, c, env.Options.Namespace)

	// Both bisections search 1 KiB..3 MiB: 1.5 times the documented limit,
	// and below gRPC's 4 MiB default message limit, which would refuse first.
	const lo, hi = 1 << 10, 3 << 20
	// Workflow inputs go to a task queue no worker polls: an accepted start
	// is only stored, then terminated.
	idle := harness.UniqueID(t, "idle")
	inputRefused := map[int]error{}
	began := time.Now()
	input := payloadBisect(lo, hi, func(n int) (bool, error) {
		id := harness.UniqueID(t, "input")
		_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: idle, WorkflowExecutionTimeout: time.Minute},
			payloadEchoWorkflow, payloadBytes(n, 3))
		if err == nil {
			return true, c.TerminateWorkflow(ctx, id, "", "size probe accepted")
		}
		if payloadRefusal(err) {
			inputRefused[n] = err
			return false, nil
		}
		return false, err
	})

	t.Logf("workflow input bisection: %d probes in %s", input.steps, time.Since(began).Round(time.Millisecond))
	began = time.Now()
	resultRefused := map[int]payloadResultOutcome{}
	resultRun := map[int]string{}
	result := payloadBisect(lo, hi, func(n int) (bool, error) {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: harness.UniqueID(t, "result"), TaskQueue: tq, WorkflowExecutionTimeout: time.Minute},
			payloadResultWorkflow, payloadResultInput{Size: n, MaxAttempts: 1})
		if err != nil {
			return false, err
		}
		var out payloadResultOutcome
		if err := run.Get(ctx, &out); err != nil {
			return false, err
		}
		if out.Fallback {
			resultRefused[n], resultRun[n] = out, run.GetID()
		}
		return !out.Fallback, nil
	})
	t.Logf("activity result bisection: %d probes in %s", result.steps, time.Since(began).Round(time.Millisecond))
	for _, b := range []*payloadBisection{&input, &result} {
		b.wire, b.wireNext = payloadWireSize(t, b.largest), payloadWireSize(t, b.largest+1)
	}

	// What history shows for the activity result just above the limit.
	refused := payloadRefused{bracketed: input.err == nil && result.err == nil}
	historyText := "(no refused result)"
	if id, ok := resultRun[result.largest+1]; ok {
		events, err := harness.History(ctx, c, id, "")
		if err != nil {
			t.Fatal(err)
		}
		if evs := harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED); len(evs) > 0 {
			f := evs[0].GetActivityTaskFailedEventAttributes().GetFailure()
			refused.history = f.GetMessage()
			historyText = fmt.Sprintf("ActivityTaskFailed failure %q (server failure, non-retryable %t)", f.GetMessage(), f.GetServerFailureInfo().GetNonRetryable())
		}
	}
	// Beyond 4 MiB the request no longer reaches the blob check: gRPC's
	// message limit refuses it first.
	_, grpcErr := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: harness.UniqueID(t, "grpc"), TaskQueue: idle, WorkflowExecutionTimeout: time.Minute},
		payloadEchoWorkflow, payloadBytes(9<<19, 4))

	if err := inputRefused[input.largest+1]; err != nil {
		refused.inputType, refused.inputError = fmt.Sprintf("%T", err), err.Error()
	}
	res := resultRefused[result.largest+1]
	refused.causeType, refused.cause = res.CauseType, res.Cause
	harness.Decide(above, payloadErrorAbovePredicate, refused, fmt.Sprintf(
		"workflow input of %d bytes (%d encoded, 1 data byte above the largest accepted): the client's start failed with %s %q. Activity result of %d bytes (%d encoded): the workflow saw %q, cause %s %q; history: %s. A 4.5 MiB input: %v",
		input.largest+1, input.wireNext, payloadOrNone(refused.inputType), refused.inputError, result.largest+1, result.wireNext,
		res.Error, payloadOrNone(res.CauseType), res.Cause, historyText, grpcErr),
		map[string]float64{"input_refused_bytes": float64(input.largest + 1), "result_refused_bytes": float64(result.largest + 1)})

	sizes := []int{1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 1_900_000}
	if input.err == nil {
		sizes = slices.DeleteFunc(sizes, func(n int) bool { return n > input.largest })
	}
	lat := payloadLatency(ctx, t, c, tq, sizes)
	found.Chart(lat.chart)
	metrics := map[string]float64{
		"documented_limit_bytes": payloadDocumentedLimit, "stated_limit_bytes": float64(limit), "resolution_bytes": 1,
		"input_limit_bytes": float64(input.largest), "input_limit_wire_bytes": float64(input.wire),
		"input_bisection_steps": float64(input.steps),
		"result_limit_bytes":    float64(result.largest), "result_limit_wire_bytes": float64(result.wire),
		"result_bisection_steps": float64(result.steps),
	}
	maps.Copy(metrics, lat.metrics)
	lf := payloadLimitFound{input: input, result: result, limit: limit}
	harness.Decide(found, payloadLimitFoundPredicate, lf, fmt.Sprintf(
		"the limit is %d bytes, %s; the documented default is %d (2 MiB: docs.temporal.io/self-hosted-guide/defaults, the server's limit.blobSize.error). "+
			"Largest accepted workflow input: %d bytes of data, %d bytes as the server measures the encoded payloads (envelope included), one data byte more %d encoded and refused; %d probes bisecting %s..%s to 1 data byte (%v). "+
			"Largest accepted activity result: %d bytes, %d encoded, one more %d refused; %d probes (%v). The %d-byte limit lies at or above the largest accepted and below the first refused encoded size: input %t, result %t. "+
			"Echo round trip p50 by size, %d samples each: %s",
		limit, limitSource, payloadDocumentedLimit,
		input.largest, input.wire, input.wireNext, input.steps, payloadSizeText(lo), payloadSizeText(hi), payloadErrText(input.err),
		result.largest, result.wire, result.wireNext, result.steps, payloadErrText(result.err),
		limit, input.wire <= limit && limit < input.wireNext, result.wire <= limit && limit < result.wireNext,
		payloadSamples, lat.summary), metrics)
}

// payloadStatedLimit is the payload limit the server states for namespace ns
// (DescribeNamespace: NamespaceInfo.Limits.BlobSizeLimitError, which server
// v1.32.0 fills from its limit.blobSize.error) and where the figure comes
// from; a server that states none is held to the documented default.
func payloadStatedLimit(ctx context.Context, t *testing.T, c client.Client, ns string) (int, string) {
	t.Helper()
	d, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
	if err != nil {
		t.Fatalf("describe namespace %s: %v", ns, err)
	}
	if n := d.GetNamespaceInfo().GetLimits().GetBlobSizeLimitError(); n > 0 {
		return int(n), fmt.Sprintf("as the server states it (DescribeNamespace %q: limits.blob_size_limit_error)", ns)
	}
	return payloadDocumentedLimit, fmt.Sprintf("the documented default (DescribeNamespace %q states no limit)", ns)
}

// payloadOrNone is s, or "(none)" when s is empty.
func payloadOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// payloadErrText is "bracketed" for nil, else the error.
func payloadErrText(err error) string {
	if err == nil {
		return "bracketed"
	}
	return err.Error()
}

// payloadSamples is the round trips timed per payload size, after
// payloadWarmup untimed ones.
const (
	payloadSamples = 20
	payloadWarmup  = 1
)

type payloadLatencies struct {
	chart   evidence.Chart
	metrics map[string]float64
	summary string
}

// payloadLatency times echo workflows from the client, start to result, at
// each size.
func payloadLatency(ctx context.Context, t *testing.T, c client.Client, tq string, sizes []int) payloadLatencies {
	t.Helper()
	out := payloadLatencies{metrics: map[string]float64{}}
	samples := evidence.Series{Name: "round trip"}
	medians := evidence.Series{Name: "p50"}
	var parts []string
	for _, n := range sizes {
		data := payloadBytes(n, 5)
		var ms []float64
		for i := range payloadWarmup + payloadSamples {
			began := time.Now()
			run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: harness.UniqueID(t, "echo"), TaskQueue: tq, WorkflowExecutionTimeout: time.Minute},
				payloadEchoWorkflow, data)
			if err != nil {
				t.Fatalf("echo of %d bytes: %v", n, err)
			}
			var got []byte
			if err := run.Get(ctx, &got); err != nil {
				t.Fatalf("echo of %d bytes: %v", n, err)
			}
			took := time.Since(began)
			if !bytes.Equal(got, data) {
				t.Fatalf("echo of %d bytes returned %d different bytes", n, len(got))
			}
			if i >= payloadWarmup {
				ms = append(ms, float64(took.Microseconds())/1000)
			}
		}
		s := stats.Summarize(ms)
		t.Logf("echo of %d bytes: p50 %.1fms p95 %.1fms max %.1fms", n, s.P50, s.P95, s.Max)
		for _, v := range ms {
			samples.X, samples.Y = append(samples.X, float64(n)), append(samples.Y, v)
		}
		medians.X, medians.Y = append(medians.X, float64(n)), append(medians.Y, s.P50)
		// rtt_ms_<n>_bytes_p50 with its interval, so that a baseline
		// comparison can gate on each size's median.
		maps.Copy(out.metrics, s.Metrics(fmt.Sprintf("rtt_ms_%d_bytes", n)))
		parts = append(parts, fmt.Sprintf("%s %.1fms [%.1f, %.1f]", payloadSizeText(n), s.P50, s.P50Lo, s.P50Hi))
	}
	out.summary = strings.Join(parts, ", ") + " (95% interval of the median in brackets)"
	out.chart = evidence.Chart{ID: "PF-03-latency-by-size", Title: "Echo workflow round trip by payload size", Kind: evidence.Points,
		LogX: true, XLabel: "payload bytes", YLabel: "round trip ms", Series: []evidence.Series{samples, medians}}
	return out
}

// payloadSizeText formats a byte count as B, KiB or MiB.
func payloadSizeText(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func testPayloadClaimCheck(t *testing.T) {
	t.Parallel()
	env := harness.Get(t)
	check := env.Check(t, "PF-03.claim-check")
	ctx := harness.Context(t, 80*time.Second)
	// 50 MiB is the catalog's object; 64 KiB, the codec's threshold, is far
	// below the payload limit, so that history never holds a large payload.
	const size, threshold = 50 << 20, 64 << 10
	store := filepath.Join(env.Scratch(t), "objects")
	codec, err := newClaimCheckCodec(store, threshold)
	if err != nil {
		t.Fatal(err)
	}
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), codec)
	c, tq := payloadCodecPair(t, env.Options, dc)

	data := payloadBytes(size, 6)
	want := payloadSHA256(data)
	began := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: harness.UniqueID(t, "claim"), TaskQueue: tq, WorkflowExecutionTimeout: 2 * time.Minute},
		payloadClaimCheckWorkflow, data)
	if err != nil {
		check.Fail(fmt.Sprintf("starting a workflow with a %d-byte input through the claim-check codec failed: %v", size, err), nil)
		return
	}
	data = nil // the 50 MB buffer is not needed past the digest
	var got []byte
	runErr := run.Get(ctx, &got)
	took := time.Since(began)
	gotSum := payloadSHA256(got)
	events, err := harness.History(ctx, c, run.GetID(), "")
	if err != nil {
		t.Fatal(err)
	}
	hp := payloadHistoryPayloads(t, events)
	activitySum := "(none)"
	if evs := harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED); len(evs) > 0 {
		if err := dc.FromPayloads(evs[0].GetActivityTaskCompletedEventAttributes().GetResult(), &activitySum); err != nil {
			activitySum = "undecodable: " + err.Error()
		}
	}
	objects, storeBytes := payloadStoreUsage(t, store)
	// Decoding and encoding 50 MB inside workflow code is slow enough to
	// trip the SDK's deadlock detector on a loaded machine; count the
	// workflow tasks that failed.
	wftFails := len(harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED))
	o := payloadClaimCheckRun{size: size, limit: payloadDocumentedLimit, sent: want, returned: gotSum, digested: activitySum, runErr: runErr,
		refs: hp.refs, maxPayload: hp.max, threshold: threshold, storeBytes: storeBytes}
	harness.Decide(check, payloadClaimCheckPredicate, o, fmt.Sprintf("a %d-byte (50 MiB, %d times the documented %d-byte limit) random object went client → workflow → activity → workflow → client in %.1fs through a claim-check codec (payloads over %d bytes go to a content-addressed directory; client and worker both use it): sha256 sent %.12s…, returned %.12s…, digested by the activity %.12s… (run error: %v). History holds %d payloads, %d of them claim-check references (the object crosses history %d times), the largest %d bytes, %d bytes in all; the store holds %d object(s), %d bytes; failed workflow tasks: %d",
		size, size/payloadDocumentedLimit, payloadDocumentedLimit, took.Seconds(), threshold, want, gotSum, activitySum, runErr, hp.count, hp.refs, payloadCrossings, hp.max, hp.total, objects, storeBytes, wftFails),
		map[string]float64{"object_bytes": size, "round_trip_s": took.Seconds(), "history_payloads": float64(hp.count),
			"history_references": float64(hp.refs), "history_payload_max_bytes": float64(hp.max), "history_payload_total_bytes": float64(hp.total),
			"store_objects": float64(objects), "store_bytes": float64(storeBytes), "workflow_task_failures": float64(wftFails)})
}

// payloadZlibEncoding is the encoding converter.NewZlibCodec gives its payloads.
const payloadZlibEncoding = "binary/zlib"

// payloadHistory summarises the payloads in a history.
type payloadHistory struct {
	count, refs, zlib int // payloads; of which claim-check references; of which zlib-encoded
	max, total        int // bytes, as proto.Size of each payload
}

func payloadHistoryPayloads(t *testing.T, events []*historypb.HistoryEvent) payloadHistory {
	t.Helper()
	var h payloadHistory
	for _, ev := range events {
		err := proxy.VisitPayloads(context.Background(), ev, proxy.VisitPayloadsOptions{
			Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
				for _, p := range ps {
					n := proto.Size(p)
					h.count++
					h.total += n
					h.max = max(h.max, n)
					switch string(p.GetMetadata()[converter.MetadataEncoding]) {
					case claimCheckEncoding:
						h.refs++
					case payloadZlibEncoding:
						h.zlib++
					}
				}
				return ps, nil
			},
		})
		if err != nil {
			t.Fatalf("visiting payloads of event %d: %v", ev.GetEventId(), err)
		}
	}
	return h
}

// payloadStoreUsage counts the objects in a claim-check store and their bytes.
func payloadStoreUsage(t *testing.T, dir string) (int, int64) {
	t.Helper()
	var n int
	var size int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n++
		size += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, size
}

func testPayloadCompression(t *testing.T) {
	t.Parallel()
	env := harness.Get(t)
	check := env.Check(t, "PF-03.compression-codec")
	ctx := harness.Context(t, 60*time.Second)
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), converter.NewZlibCodec(converter.ZlibCodecOptions{}))
	c, tq := payloadCodecPair(t, env.Options, dc)

	// Log-like text of 3 MiB: compressible, and above the 2 MiB limit
	// uncompressed, so that only the codec lets it through.
	var b strings.Builder
	for i := 0; b.Len() < 3<<20; i++ {
		fmt.Fprintf(&b, "%07d level=info service=orders region=ap-northeast-1 status=ok latency_ms=%d\n", i, i%97)
	}
	text := b.String()
	raw, err := converter.GetDefaultDataConverter().ToPayloads(text)
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: harness.UniqueID(t, "zlib"), TaskQueue: tq, WorkflowExecutionTimeout: time.Minute},
		payloadDigestWorkflow, text)
	if err != nil {
		check.Fail(fmt.Sprintf("starting a workflow with %d bytes of text through the zlib codec failed: %v", len(text), err), nil)
		return
	}
	var got payloadDigested
	runErr := run.Get(ctx, &got)
	events, err := harness.History(ctx, c, run.GetID(), "")
	if err != nil {
		t.Fatal(err)
	}
	started := harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)[0].GetWorkflowExecutionStartedEventAttributes().GetInput()
	inHistory := proto.Size(started)
	hp := payloadHistoryPayloads(t, events)
	want := payloadSHA256([]byte(text))
	ratio := float64(proto.Size(raw)) / float64(max(inHistory, 1))
	o := payloadCompressionRun{rawBytes: proto.Size(raw), limit: payloadDocumentedLimit, historyBytes: inHistory, zlib: hp.zlib,
		workerSum: got.SHA256, clientSum: want, textIntact: got.Text == text, runErr: runErr}
	harness.Decide(check, payloadCompressionPredicate, o, fmt.Sprintf("%d bytes of log-like text (%d encoded without the codec, above the documented %d-byte limit) started a workflow through converter.NewZlibCodec: history stores the input in %d bytes (%.0fx smaller); %d of the history's %d payloads are binary/zlib (the workflow's input and result make %d), %d bytes in all. The worker's sha256 of the text it decoded %.12s…, the client's of the text it sent %.12s…; the result the client decoded is the text sent: %t (run error: %v)",
		len(text), proto.Size(raw), payloadDocumentedLimit, inHistory, ratio, hp.zlib, hp.count, payloadCodecPayloads, hp.total, got.SHA256, want, got.Text == text, runErr),
		map[string]float64{"raw_bytes": float64(proto.Size(raw)), "history_input_bytes": float64(inHistory), "compression_ratio": ratio,
			"history_payload_total_bytes": float64(hp.total)})
}

func testPayloadOversized(t *testing.T) {
	t.Parallel()
	env := harness.Get(t)
	check := env.Check(t, "PF-03.oversized-result-recoverable")
	ctx := harness.Context(t, 80*time.Second)
	c := payloadDial(t, env.Options, &payloadLog{})
	sdkTQ, serverTQ := harness.UniqueID(t, "sdk"), harness.UniqueID(t, "server")
	payloadWorker(t, c, sdkTQ, worker.Options{})
	payloadWorker(t, c, serverTQ, worker.Options{DisablePayloadErrorLimit: true})

	type variant struct {
		name     string
		tq       string
		attempts int32
		out      payloadResultOutcome
		err      error
		wftFails int
		tries    int32
		took     time.Duration
	}
	variants := []*variant{
		{name: "the worker's own check (SDK default), retry policy of 3 attempts", tq: sdkTQ, attempts: 3},
		{name: "the server's check (worker DisablePayloadErrorLimit), the default retry policy", tq: serverTQ},
	}
	var parts []string
	var runs []payloadOversizedRun
	for _, v := range variants {
		began := time.Now()
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: harness.UniqueID(t, "oversized"), TaskQueue: v.tq, WorkflowExecutionTimeout: time.Minute},
			payloadResultWorkflow, payloadResultInput{Size: payloadAbove, MaxAttempts: v.attempts})
		if err != nil {
			t.Fatal(err)
		}
		// A wedged workflow task would never complete: wait a bounded time,
		// over 20 times the 0.1-1.3 s these variants took in the committed
		// report's run.
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		v.err = run.Get(wctx, &v.out)
		cancel()
		v.took = time.Since(began)
		events, err := harness.History(ctx, c, run.GetID(), "")
		if err != nil {
			t.Fatal(err)
		}
		v.wftFails = len(harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED))
		if evs := harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED); len(evs) > 0 {
			v.tries = evs[len(evs)-1].GetActivityTaskStartedEventAttributes().GetAttempt()
		}
		if v.err != nil {
			_ = c.TerminateWorkflow(ctx, run.GetID(), "", "oversized result did not resolve in time")
		}
		runs = append(runs, payloadOversizedRun{waitErr: v.err, fallback: v.out.Fallback, cause: v.out.Cause, wftFails: v.wftFails})
		parts = append(parts, fmt.Sprintf("with %s the workflow returned: %t (after %.1fs; wait error: %v), fallback taken: %t, after %d attempt(s), having seen %s %q (retryable: %q); failed workflow tasks: %d",
			v.name, v.err == nil, v.took.Seconds(), v.err, v.out.Fallback, v.tries, payloadOrNone(v.out.CauseType), v.out.Cause, v.out.Retryable, v.wftFails))
	}

	// The worker's failure is retryable: under the default retry policy the
	// activity runs again and again instead of reaching the workflow.
	retried := payloadRetriedForever(ctx, t, c, sdkTQ)
	// A workflow's own result above the limit has no activity to fail.
	wedged := payloadWedgedResult(ctx, t, c, sdkTQ)
	parts = append(parts, retried, wedged)
	harness.Decide(check, payloadOversizedPredicate, runs, fmt.Sprintf("an activity returning %d bytes (documented limit %d): %s", payloadAbove, payloadDocumentedLimit, strings.Join(parts, ". ")),
		map[string]float64{
			"sdk_check_attempts": float64(variants[0].tries), "sdk_check_s": variants[0].took.Seconds(),
			"server_check_attempts": float64(variants[1].tries), "server_check_s": variants[1].took.Seconds(),
		})
}

// payloadRetriedForever runs an oversized activity result under the default
// retry policy with the worker's own check and describes what the pending
// activity shows once it reaches its third attempt.
func payloadRetriedForever(ctx context.Context, t *testing.T, c client.Client, tq string) string {
	t.Helper()
	id := harness.UniqueID(t, "retried")
	if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tq, WorkflowExecutionTimeout: time.Minute},
		payloadResultWorkflow, payloadResultInput{Size: payloadAbove}); err != nil {
		t.Fatal(err)
	}
	defer c.TerminateWorkflow(context.Background(), id, "", "observed")
	var attempt int32
	var last string
	err := harness.WaitFor(ctx, 20*time.Second, 100*time.Millisecond, "a third attempt", func(ctx context.Context) (bool, error) {
		d, err := c.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			return false, err
		}
		for _, pa := range d.GetPendingActivities() {
			attempt, last = pa.GetAttempt(), pa.GetLastFailure().GetMessage()
		}
		return attempt >= 3, nil
	})
	if err != nil {
		return fmt.Sprintf("with the worker's own check and the default retry policy the activity reached attempt %d (%v), last failure %q", attempt, err, last)
	}
	return fmt.Sprintf("with the worker's own check and the default retry policy the failure is retryable: the activity was still pending at attempt %d, last failure %q, and the workflow sees nothing until the policy gives up", attempt, last)
}

// payloadWedgedResult runs a workflow whose own result is above the limit
// and describes what history shows.
func payloadWedgedResult(ctx context.Context, t *testing.T, c client.Client, tq string) string {
	t.Helper()
	id := harness.UniqueID(t, "wedged")
	if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tq, WorkflowExecutionTimeout: time.Minute},
		payloadMakeWorkflow, payloadAbove); err != nil {
		t.Fatal(err)
	}
	defer c.TerminateWorkflow(context.Background(), id, "", "observed")
	var failed *historypb.WorkflowTaskFailedEventAttributes
	err := harness.WaitFor(ctx, 20*time.Second, 100*time.Millisecond, "a failed workflow task", func(ctx context.Context) (bool, error) {
		events, err := harness.History(ctx, c, id, "")
		if err != nil {
			return false, err
		}
		if evs := harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED); len(evs) > 0 {
			failed = evs[0].GetWorkflowTaskFailedEventAttributes()
		}
		return failed != nil, nil
	})
	if err != nil {
		return fmt.Sprintf("a workflow returning %d bytes itself: no failed workflow task seen (%v)", payloadAbove, err)
	}
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("a workflow returning %d bytes itself cannot catch anything: its workflow task failed with cause %s, %q, and the workflow stays %s (pending workflow task attempt %d)",
		payloadAbove, failed.GetCause(), failed.GetFailure().GetMessage(), d.GetWorkflowExecutionInfo().GetStatus(), d.GetPendingWorkflowTask().GetAttempt())
}

func testPayloadWarning(t *testing.T, srv *harness.Server) {
	env := harness.Get(t)
	check := env.Check(t, "PF-03.warning-threshold")
	ctx := harness.Context(t, 45*time.Second)
	o := env.Options
	if srv != nil {
		check.OnServer(srv)
		o = client.Options{HostPort: srv.Address(), Namespace: "default"}
	}
	logs := &payloadLog{}
	c := payloadDial(t, o, logs)
	idle := harness.UniqueID(t, "idle")
	// 300,000 bytes is above the 256 KB that the catalog and the docs page
	// name. The other two are the largest input that encodes to no more than
	// the documented threshold, and one data byte more: SDK and server both
	// warn on encoded size > threshold.
	atWarn := payloadDataFor(t, payloadDocumentedWarn)
	sizes := []int{300_000, atWarn, atWarn + 1}
	ids := make([]string, len(sizes))
	obs := payloadWarnings{threshold: payloadDocumentedWarn, probes: make([]payloadWarnProbe, len(sizes))}
	for i, n := range sizes {
		before := len(logs.matching(payloadSDKWarning))
		ids[i] = harness.UniqueID(t, "warn")
		if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: ids[i], TaskQueue: idle, WorkflowExecutionTimeout: time.Minute},
			payloadEchoWorkflow, payloadBytes(n, 7)); err != nil {
			t.Fatalf("start with %d bytes: %v", n, err)
		}
		if err := c.TerminateWorkflow(ctx, ids[i], "", "warning probe"); err != nil {
			t.Fatal(err)
		}
		// The SDK checks the size as it sends the request: its line, if
		// any, is logged before ExecuteWorkflow returns.
		obs.probes[i] = payloadWarnProbe{wire: payloadWireSize(t, n), sdk: len(logs.matching(payloadSDKWarning)) > before}
	}
	sdkLines := logs.matching(payloadSDKWarning)
	sdkText, sdkLimit := "none", "(no line)"
	if len(sdkLines) > 0 {
		sdkText = sdkLines[len(sdkLines)-1]
		sdkLimit = payloadLogValue(sdkText, "PayloadSizeLimit")
	}

	serverText := "the server's log is not readable (external server): SDK warnings only"
	if srv != nil {
		path, err := payloadServerLog(t, srv.Address())
		if err != nil {
			t.Fatal(err)
		}
		// The server logs as it handles each start, in order: once the
		// last start's line is there, an earlier start's line would be too.
		last := ids[len(ids)-1]
		var seen map[string]string
		err = harness.WaitFor(ctx, 15*time.Second, 100*time.Millisecond, "the server's blob size warning", func(context.Context) (bool, error) {
			var err error
			seen, err = payloadServerWarnings(path)
			_, ok := seen[last]
			return ok, err
		})
		lines := 0
		for i, id := range ids {
			if _, ok := seen[id]; ok {
				obs.probes[i].server = true
				lines++
			}
		}
		serverText = fmt.Sprintf("server log %s: %d %q lines for these starts", filepath.Base(path), lines, payloadServerWarning)
		if err != nil {
			serverText += " (" + err.Error() + ")"
		}
		if line, ok := seen[last]; ok {
			serverText += "; the line: " + line
		}
	}
	var parts []string
	for i, p := range obs.probes {
		parts = append(parts, fmt.Sprintf("%d bytes (%d encoded): SDK warned %t, server warned %t", sizes[i], p.wire, p.sdk, p.server))
	}
	harness.Decide(check, payloadWarningPredicate, obs, fmt.Sprintf(
		"documented threshold %d bytes (512 KiB: the server's limit.blobSize.warn and the SDK's PayloadSizeWarning default; the catalog and docs.temporal.io/self-hosted-guide/defaults name 256 KB); workflow inputs of %s; the SDK's last warning (%d in all) states PayloadSizeLimit %s: %q; %s",
		payloadDocumentedWarn, strings.Join(parts, ", "), len(sdkLines), sdkLimit, sdkText, serverText),
		map[string]float64{"documented_warn_bytes": payloadDocumentedWarn, "sdk_warnings": float64(len(sdkLines))})
}

// payloadDataFor is the largest number of data bytes whose encoded payload
// is at most wire bytes.
func payloadDataFor(t *testing.T, wire int) int {
	t.Helper()
	n := wire
	for payloadWireSize(t, n) > wire {
		n -= max(1, payloadWireSize(t, n)-wire)
	}
	for payloadWireSize(t, n+1) <= wire {
		n++
	}
	return n
}

// payloadLogValue is the value logged after key in a payloadLog line, or
// "(absent)".
func payloadLogValue(line, key string) string {
	fields := strings.Fields(strings.Trim(line, "[]"))
	for i, f := range fields {
		if strings.Trim(f, "[]") == key && i+1 < len(fields) {
			return strings.Trim(fields[i+1], "[]")
		}
	}
	return "(absent)"
}

// The warning lines this scenario looks for.
const (
	payloadSDKWarning    = "exceeded the warning limit"
	payloadServerWarning = "Blob data size exceeds the warning limit."
)

// payloadServerLog finds the log file of the dev server at addr: the harness
// writes each server's output, its ready line with the address included,
// under the package's scratch directory.
func payloadServerLog(t *testing.T, addr string) (string, error) {
	t.Helper()
	root := filepath.Dir(harness.Get(t).Scratch(t))
	paths, err := filepath.Glob(filepath.Join(root, "server-*", "server-*.log"))
	if err != nil {
		return "", err
	}
	needle := []byte(`"address":"` + addr + `"`)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, needle) {
			return p, nil
		}
	}
	return "", fmt.Errorf("no server log under %s announces %s", root, addr)
}

// payloadServerWarnings returns the server's blob size warnings in a log,
// keyed by workflow id.
func payloadServerWarnings(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != payloadServerWarning {
			continue
		}
		if id, ok := line["wf-id"].(string); ok {
			out[id] = sc.Text()
		}
	}
	return out, sc.Err()
}

func testPayloadHistoryLimit(t *testing.T, srv *harness.Server) {
	env := harness.Get(t)
	check := env.Check(t, "PF-03.history-size-limit")
	check.OnServer(srv)
	ctx := harness.Context(t, 80*time.Second)
	c := payloadDial(t, client.Options{HostPort: srv.Address(), Namespace: "default"}, &payloadLog{})
	tq := harness.TaskQueue(t)
	payloadWorker(t, c, tq, worker.Options{})

	// The limits judged are those the server announced it runs with.
	bounds := []struct {
		name    string
		in      payloadGrowInput
		key     string // the dynamic config of the error limit
		suggest string // and of the continue-as-new suggestion
		measure func(*runInfo) int
		unit    string
	}{
		{"size", payloadGrowInput{Batch: 8, ResultBytes: 32 << 10}, "limit.historySize.error", "limit.historySize.suggestContinueAsNew", func(r *runInfo) int { return r.size }, "bytes"},
		{"count", payloadGrowInput{Batch: 20, ResultBytes: 16}, "limit.historyCount.error", "limit.historyCount.suggestContinueAsNew", func(r *runInfo) int { return r.events }, "events"},
	}
	var parts []string
	var obs []payloadHistoryBound
	metrics := map[string]float64{}
	for _, b := range bounds {
		o := payloadHistoryBound{limit: payloadServerInt(t, srv, b.key)}
		// Unbounded: the server must stop it.
		id := harness.UniqueID(t, "grow-"+b.name)
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tq, WorkflowExecutionTimeout: time.Minute}, payloadGrowWorkflow, b.in)
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		runID := run.GetRunID()
		growErr := run.Get(wctx, nil)
		cancel()
		if d, err := describeRun(ctx, c, id, runID); err == nil && d.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			o.byUs = c.TerminateWorkflow(ctx, id, runID, "history limit not reached in time") == nil
		}
		stopped, err := describeRun(ctx, c, id, runID)
		if err != nil {
			t.Fatal(err)
		}
		o.stoppedAt, o.reason = b.measure(stopped), stopped.reason
		o.terminated = stopped.status == enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED
		// The workflow adds a batch of activities per workflow task; what
		// one batch adds is read off the stopped run itself.
		if stopped.activities > 0 {
			o.step = o.stoppedAt * b.in.Batch / stopped.activities
		}

		// More work than one run can hold, with continue-as-new: twice what
		// the stopped run held, rounded down to whole batches.
		chain := b.in
		chain.Target = 2 * max(stopped.activities, chain.Batch)
		chain.Target -= chain.Target % chain.Batch
		chain.ContinueAsNew = true
		o.target = chain.Target
		cid := harness.UniqueID(t, "can-"+b.name)
		crun, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: cid, TaskQueue: tq, WorkflowExecutionTimeout: time.Minute}, payloadGrowWorkflow, chain)
		if err != nil {
			t.Fatal(err)
		}
		firstRun := crun.GetRunID() // Get follows the chain and moves the run id on to the last run
		var out payloadGrowOutcome
		wctx, cancel = context.WithTimeout(ctx, 45*time.Second)
		o.chainErr = crun.Get(wctx, &out)
		cancel()
		o.done, o.runs = out.Done, out.Runs
		runs, err := describeChain(ctx, c, cid, firstRun)
		if err != nil {
			t.Fatal(err)
		}
		o.runsFound = len(runs)
		for _, r := range runs {
			o.largest = max(o.largest, b.measure(r))
		}
		obs = append(obs, o)
		parts = append(parts, fmt.Sprintf("history %s limit %d %s (%s): a run growing without end was %s at %d bytes and %d events (%.2f of the limit; one batch of %d activities adds about %d %s) after %d activities, reason %q by %q (terminated by the test: %t; error seen by the client: %v); "+
			"with continue-as-new when suggested (%s=%s) %d activities (twice what the stopped run held, in whole batches) completed %d over %d runs (%d found in history), the largest run %d %s (chain error: %v)",
			b.name, o.limit, b.unit, b.key, stopped.status, stopped.size, stopped.events, float64(o.stoppedAt)/float64(o.limit), b.in.Batch, o.step, b.unit, stopped.activities, stopped.reason, stopped.identity, o.byUs, growErr,
			b.suggest, srv.Info().DynamicConfig[b.suggest], o.target, o.done, o.runs, o.runsFound, o.largest, b.unit, o.chainErr))
		metrics[b.name+"_limit"] = float64(o.limit)
		metrics[b.name+"_stopped_at_bytes"] = float64(stopped.size)
		metrics[b.name+"_stopped_at_events"] = float64(stopped.events)
		metrics[b.name+"_batch_step"] = float64(o.step)
		metrics[b.name+"_chain_runs"] = float64(out.Runs)
		metrics[b.name+"_chain_largest"] = float64(o.largest)
	}
	harness.Decide(check, payloadHistoryLimitPredicate, obs, fmt.Sprintf("on a dedicated server with lowered limits (%s): %s", payloadConfigText(), strings.Join(parts, "; ")), metrics)
}

// payloadServerInt is the integer dynamic config value key that server srv
// announced; a server that did not announce it is a harness fault.
func payloadServerInt(t *testing.T, srv *harness.Server, key string) int {
	t.Helper()
	v, err := strconv.Atoi(srv.Info().DynamicConfig[key])
	if err != nil {
		t.Fatalf("dedicated server's %s: %v", key, err)
	}
	return v
}

// payloadConfigText lists the dedicated server's dynamic config.
func payloadConfigText() string {
	keys := slices.Sorted(maps.Keys(payloadLimitsConfig))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + payloadLimitsConfig[k]
	}
	return strings.Join(parts, ", ")
}

// payloadDial returns a client whose SDK log lines go to logs rather than the
// test log (payload warnings would flood it), closed at test end.
func payloadDial(t testing.TB, o client.Options, logs *payloadLog) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o.Logger = logs
	c, err := client.DialContext(ctx, o)
	if err != nil {
		t.Fatalf("dial %s: %v", o.HostPort, err)
	}
	t.Cleanup(c.Close)
	return c
}

// payloadCodecPair dials a client and starts a worker (on a client of its
// own, as a separate process would have) that both use dc, and returns the
// client and the worker's task queue.
func payloadCodecPair(t *testing.T, o client.Options, dc converter.DataConverter) (client.Client, string) {
	t.Helper()
	o.DataConverter = dc
	c := payloadDial(t, o, &payloadLog{})
	tq := harness.TaskQueue(t)
	payloadWorker(t, payloadDial(t, o, &payloadLog{}), tq, worker.Options{})
	return c, tq
}

// payloadWorker starts an in-process worker of the PF-03 workflows on tq,
// stopped at test end.
func payloadWorker(t testing.TB, c client.Client, tq string, o worker.Options) {
	t.Helper()
	w := worker.New(c, tq, o)
	registerPayload(w)
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)
}

// payloadLog is an SDK logger that keeps warnings and errors for inspection.
type payloadLog struct {
	mu    sync.Mutex
	lines []string
}

var _ sdklog.Logger = (*payloadLog)(nil)

func (l *payloadLog) add(level, msg string, kv []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf("%s %s %v", level, msg, kv))
}

func (l *payloadLog) Debug(string, ...any)        {}
func (l *payloadLog) Info(string, ...any)         {}
func (l *payloadLog) Warn(msg string, kv ...any)  { l.add("warn", msg, kv) }
func (l *payloadLog) Error(msg string, kv ...any) { l.add("error", msg, kv) }

// matching returns the kept lines containing s.
func (l *payloadLog) matching(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}
