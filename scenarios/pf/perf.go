package pf

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/metrics"
)

// rig is what a performance test measures through: a client whose SDK
// metrics are collected, an in-process worker on its own task queue, and the
// server's metrics endpoint when the harness runs the server.
type rig struct {
	c          client.Client
	ns         string
	sdk        *metrics.SDK
	serverURL  string
	tq         string
	rec        *fanRecorder
	delay      time.Duration
	workerOpts worker.Options
}

// newRig starts a worker for the step and fan-out workflows on base's
// server, whose namespace is ns. serverURL is that server's metrics endpoint
// ("" if unknown).
func newRig(t testing.TB, base client.Client, ns, serverURL string, opts worker.Options) *rig {
	t.Helper()
	delay, err := injectedDelay()
	if err != nil {
		t.Fatal(err)
	}
	sdk, err := metrics.NewSDK()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdk.Close(context.Background()) })
	c, err := client.NewClientFromExisting(base, client.Options{MetricsHandler: sdk.Handler(), Logger: harness.TestLogger(t)})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(c.Close)
	r := &rig{c: c, ns: ns, sdk: sdk, serverURL: serverURL, tq: harness.TaskQueue(t), rec: &fanRecorder{}, delay: delay, workerOpts: opts}
	w := worker.New(c, r.tq, opts)
	registerSteps(w, delay, r.rec)
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return r
}

// snapshot is SDK and server metrics at one moment.
type snapshot struct{ sdk, server metrics.Snapshot }

func (r *rig) snapshot(ctx context.Context) (snapshot, error) {
	var s snapshot
	var err error
	if s.sdk, err = r.sdk.Snapshot(); err != nil {
		return s, err
	}
	if r.serverURL != "" {
		if s.server, err = metrics.Scrape(ctx, r.serverURL); err != nil {
			return s, err
		}
	}
	return s, nil
}

// since is what happened between before and s.
func (s snapshot) since(before snapshot) snapshot {
	out := snapshot{sdk: s.sdk.Sub(before.sdk)}
	if s.server != nil {
		out.server = s.server.Sub(before.server)
	}
	return out
}

// add sums two differences: what happened over both stretches.
func (s snapshot) add(o snapshot) snapshot {
	out := snapshot{sdk: s.sdk.Add(o.sdk)}
	if s.server != nil || o.server != nil {
		out.server = s.server.Add(o.server)
	}
	return out
}

// delayNote tells a reader of the evidence that the delay switch was on.
func (r *rig) delayNote() string {
	if r.delay == 0 {
		return ""
	}
	return fmt.Sprintf(" [%s=%s was set: every empty activity slept %s]", DelayEnv, r.delay, r.delay)
}
