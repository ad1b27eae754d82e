package pf

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
)

// The benchmarks time the paths PF-01..PF-03 measure, in the form benchstat
// compares between two builds or two servers (`make bench`, then `benchstat
// old.txt new.txt`). They record no evidence: the scenarios do that. Each
// runs against the package's server, like the tests.

// BenchmarkStep times one durable step from the client, as PF-01 does: an
// update whose handler runs nothing, an empty activity or an empty local
// activity.
func BenchmarkStep(b *testing.B) {
	env := harness.Get(b)
	ctx := harness.Context(b, 20*time.Minute)
	r := newRig(b, env.Dial(b), env.Options.Namespace, env.MetricsURL(), worker.Options{})
	for _, kind := range []string{kindNone, kindActivity, kindLocal} {
		b.Run(kind, func(b *testing.B) {
			st := r.startStepper(ctx, b, kind)
			for range stepWarmup {
				if _, err := st.step(ctx); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if _, err := st.step(ctx); err != nil {
					b.Fatal(err)
				}
			}
			if err := st.stop(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkFunctionCall is the plain Go call PF-01 compares a step with.
func BenchmarkFunctionCall(b *testing.B) {
	delay, err := injectedDelay()
	if err != nil {
		b.Fatal(err)
	}
	s, ctx := steps{delay}, context.Background()
	for b.Loop() {
		_ = s.Empty(ctx)
	}
}

// BenchmarkFanOut runs one fan-out of 1,000 empty activities per iteration,
// as PF-02 does, and reports activities per second.
func BenchmarkFanOut(b *testing.B) {
	env := harness.Get(b)
	ctx := harness.Context(b, 20*time.Minute)
	r := newRig(b, env.Dial(b), env.Options.Namespace, env.MetricsURL(), fanWorkerOptions)
	in := FanOutInput{Total: fanSmall, Window: fanSmall, PerRun: fanSmall}
	activities := 0
	for b.Loop() {
		run, err := r.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: harness.UniqueID(b, "fan"), TaskQueue: r.tq}, fanOutName, in)
		if err != nil {
			b.Fatal(err)
		}
		var n int
		if err := run.Get(ctx, &n); err != nil {
			b.Fatal(err)
		}
		activities += n
	}
	b.ReportMetric(float64(activities)/b.Elapsed().Seconds(), "activities/s")
	r.rec.take()
}

// BenchmarkPayloadEcho times an echo workflow's round trip from the client
// at the payload sizes PF-03 charts.
func BenchmarkPayloadEcho(b *testing.B) {
	env := harness.Get(b)
	ctx := harness.Context(b, 20*time.Minute)
	c := payloadDial(b, env.Options, &payloadLog{})
	tq := harness.TaskQueue(b)
	payloadWorker(b, c, tq, worker.Options{})
	for _, n := range []int{1 << 10, 64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("bytes=%d", n), func(b *testing.B) {
			data := payloadBytes(n, 5)
			b.SetBytes(int64(n))
			for b.Loop() {
				run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: harness.UniqueID(b, "echo"), TaskQueue: tq}, payloadEchoWorkflow, data)
				if err != nil {
					b.Fatal(err)
				}
				var got []byte
				if err := run.Get(ctx, &got); err != nil {
					b.Fatal(err)
				}
				if !bytes.Equal(got, data) {
					b.Fatalf("echo of %d bytes came back different", n)
				}
			}
		})
	}
}
