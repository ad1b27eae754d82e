package op

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/durabench/durabench/harness"
)

// TestOP05 measures retention and cleanup: deleting a closed and a running
// execution on the shared server (its default configuration), and on a
// dedicated server with the minimum retention and its jitter lowered,
// retention enforced, retention per namespace (one of them updated), and
// file-store archival read back through the API once retention removed the
// run. The checks run side by side: each waits on server timers.
func TestOP05(t *testing.T) {
	env := harness.Get(t)
	var srv *harness.Server
	ok, why := env.CanKillServer()
	if ok {
		srv = env.StartServer(t, harness.ServerOptions{
			ArchivalDir: env.Scratch(t),
			DynamicConfig: map[string]string{
				"system.namespaceMinRetentionLocal":    retentionMin.String(),
				"history.retentionTimerJitterDuration": retentionJitter.String(),
				"system.namespaceCacheRefreshInterval": retentionCacheRefresh.String(),
			},
		})
	}
	for _, c := range []struct {
		name, check string
		dedicated   bool // runs on the dedicated server
		run         func(*testing.T, *harness.Check, *harness.Server)
	}{
		{"delete_execution", "OP-05.delete-execution", false, testOP05DeleteExecution},
		{"delete_running", "OP-05.delete-running", false, testOP05DeleteRunning},
		{"retention_enforced", "OP-05.retention-enforced", true, testOP05RetentionEnforced},
		{"retention_per_namespace", "OP-05.retention-per-namespace", true, testOP05RetentionPerNamespace},
		{"archival", "OP-05.archival-filestore", true, testOP05Archival},
	} {
		t.Run(c.name, func(t *testing.T) {
			chk := env.Check(t, c.check)
			if c.dedicated && srv == nil {
				chk.NotMeasured("needs a dedicated server with its own dynamic config and archival: " + why)
				return
			}
			if c.dedicated {
				chk.OnServer(srv)
			}
			t.Parallel()
			c.run(t, chk, srv)
		})
	}
}

// The dedicated server's retention settings, and the bounds the checks
// derive from them.
const (
	// retentionMin is system.namespaceMinRetentionLocal (default 1 h),
	// lowered so that a namespace may keep its closed runs for seconds.
	retentionMin = time.Second
	// retentionJitter is history.retentionTimerJitterDuration (default
	// 30 min): removal comes up to this long after the retention elapses.
	// 1 s is what Temporal's own functional tests use
	// (tests/testcore/dynamic_config_overrides.go).
	retentionJitter = time.Second
	// retentionCacheRefresh is system.namespaceCacheRefreshInterval (default
	// 10 s): how soon the history service sees a namespace update.
	retentionCacheRefresh = time.Second
	// retentionSlack is our stated allowance past retention + jitter for the
	// timer queue to delete a run and the watch to see it; not a documented
	// guarantee.
	retentionSlack = 5 * time.Second
	// retentionEarly: a run must be found this close to its retention's end
	// (ten describe polls), showing it was kept until then.
	retentionEarly = time.Second
	// deleteDeadline bounds the wait for an explicit delete to take effect.
	// The server deletes a closed run only once its close task is acked, and
	// ack levels are saved every history.transferProcessorUpdateAckInterval
	// (30 s +15% by default, server comment in
	// transfer_queue_task_executor_base.go), the delete task retrying at 3 s
	// x 1.5^n meanwhile: removal within about 40 s, 60 s stated allowance.
	deleteDeadline = 60 * time.Second
)

// window is the removal window of retention r on the dedicated server.
func window(r time.Duration) retentionWindow {
	return retentionWindow{retention: r, jitter: retentionJitter, slack: retentionSlack}
}

func (w retentionWindow) String() string {
	return fmt.Sprintf("retention %s: removal in [%s, %s] after close (jitter %s, slack %s), found within %s of the end",
		w.retention, w.retention, w.retention+w.jitter+w.slack, w.jitter, w.slack, retentionEarly)
}

// deleteRun calls DeleteWorkflowExecution on one run.
func (n retentionNS) deleteRun(ctx context.Context, id, runID string) error {
	_, err := n.c.WorkflowService().DeleteWorkflowExecution(ctx, &workflowservice.DeleteWorkflowExecutionRequest{
		Namespace: n.name, WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: runID},
	})
	return err
}

// waitUnlisted waits until neither list nor count returns workflow id, and
// returns what they returned last.
func (n retentionNS) waitUnlisted(ctx context.Context, id string) (listed, counted int, err error) {
	err = harness.WaitFor(ctx, deleteDeadline, retentionPoll, "visibility to drop "+id, func(ctx context.Context) (bool, error) {
		var verr error
		listed, counted, verr = visibleRuns(ctx, n.c, n.name, id)
		return verr == nil && listed == 0 && counted == 0, verr
	})
	return listed, counted, err
}

func testOP05DeleteExecution(t *testing.T, chk *harness.Check, _ *harness.Server) {
	env := harness.Get(t)
	ctx := harness.Context(t, 3*time.Minute)
	n := newRetentionNS(t, env.Dial(t), env.Options.Namespace)
	run := n.closeRun(ctx, t)
	var o retentionDelete
	listErr := harness.WaitFor(ctx, deleteDeadline, retentionPoll, "the closed run to be listed", func(ctx context.Context) (bool, error) {
		var err error
		o.listedBefore, _, err = visibleRuns(ctx, n.c, n.name, run.id)
		return o.listedBefore == 1, err
	})
	deleted := time.Now()
	o.deleteErr = n.deleteRun(ctx, run.id, run.runID)
	// Visibility and the main store are watched side by side: the server
	// removes them in separate tasks.
	var unlisted time.Duration
	visDone := make(chan struct{})
	go func() {
		defer close(visDone)
		o.listed, o.counted, o.visErr = n.waitUnlisted(ctx, run.id)
		unlisted = time.Since(deleted)
	}()
	o.rm = watchRemoval(ctx, n.c, run.id, run.runID, deleted, deleted.Add(deleteDeadline))
	_, o.historyErr = harness.History(ctx, n.c, run.id, run.runID)
	<-visDone
	harness.Decide(chk, retentionDeletePredicate, o, fmt.Sprintf(
		"completed run %s/%s listed %d time(s) before the delete (wait: %v); DeleteWorkflowExecution returned %v; describe after it: %s; "+
			"history read then: %v; visibility at %.2fs: list %d, count %d (%v); deadline %s (stated)",
		run.id, harness.ShortID(run.runID), o.listedBefore, listErr, o.deleteErr, o.rm, o.historyErr, unlisted.Seconds(), o.listed, o.counted, o.visErr, deleteDeadline),
		map[string]float64{"describe_notfound_s": o.rm.goneAt.Seconds(), "unlisted_s": unlisted.Seconds()})
}

// deleteRunningAttempts bounds the runs deleteRunning tries: a long poll that
// reaches the server only after the run was removed returns NotFound and
// says nothing either way, so the scenario is repeated on a fresh run.
const deleteRunningAttempts = 3

func testOP05DeleteRunning(t *testing.T, chk *harness.Check, _ *harness.Server) {
	env := harness.Get(t)
	ctx := harness.Context(t, 2*time.Minute)
	n := newRetentionNS(t, env.Dial(t), env.Options.Namespace)
	var o retentionDeleteRunning
	var tries []string
	for range deleteRunningAttempts {
		var detail string
		var pollErr error
		o, detail, pollErr = n.deleteRunning(ctx, t)
		tries = append(tries, detail)
		if o.closeEvent != enumspb.EVENT_TYPE_UNSPECIFIED || !isNotFound(pollErr) {
			break
		}
	}
	harness.Decide(chk, retentionDeleteRunningPredicate, o, fmt.Sprintf("%d run(s) (a close-event long poll that lost the race with the removal is repeated on a new run, up to %d): %s",
		len(tries), deleteRunningAttempts, strings.Join(tries, "; then ")),
		map[string]float64{"describe_notfound_s": o.rm.goneAt.Seconds(), "runs": float64(len(tries))})
}

// deleteRunning deletes a run held open on a timer, with a long poll on its
// close event in flight, and returns what it observed, as data and as text,
// and the long poll's error.
func (n retentionNS) deleteRunning(ctx context.Context, t *testing.T) (retentionDeleteRunning, string, error) {
	t.Helper()
	const hold = 10 * time.Minute
	run := n.start(ctx, t, hold)
	id, runID := run.GetID(), run.GetRunID()
	if err := harness.WaitFor(ctx, deleteDeadline, retentionPoll, "the run's timer to start", func(ctx context.Context) (bool, error) {
		events, err := harness.History(ctx, n.c, id, runID)
		return len(harness.EventsOf(events, enumspb.EVENT_TYPE_TIMER_STARTED)) == 1, err
	}); err != nil {
		t.Fatal(err)
	}
	var o retentionDeleteRunning
	desc, err := n.c.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	o.statusBefore = desc.GetWorkflowExecutionInfo().GetStatus()
	type closeObs struct {
		ev  *historypb.HistoryEvent
		err error
	}
	closed := make(chan closeObs, 1)
	go func() {
		it := n.c.GetWorkflowHistory(ctx, id, runID, true, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
		ev, err := it.Next()
		closed <- closeObs{ev, err}
	}()
	deleted := time.Now()
	o.deleteErr = n.deleteRun(ctx, id, runID)
	o.rm = watchRemoval(ctx, n.c, id, runID, deleted, deleted.Add(deleteDeadline))
	c := <-closed
	o.closeEvent = c.ev.GetEventType()
	o.closeReason = c.ev.GetWorkflowExecutionTerminatedEventAttributes().GetReason()
	o.listed, _, o.visErr = n.waitUnlisted(ctx, id)
	return o, fmt.Sprintf("run %s/%s %s on a %s timer; DeleteWorkflowExecution returned %v; the close-event long poll in flight returned %s (reason %q, error %v); "+
		"describe after the delete: %s; visibility rows then: %d (%v)",
		id, harness.ShortID(runID), o.statusBefore, hold, o.deleteErr, o.closeEvent, o.closeReason, c.err, o.rm, o.listed, o.visErr), c.err
}

// retentionConfig is the server's retention configuration, for details.
func retentionConfig(srv *harness.Server) string {
	dc := srv.Info().DynamicConfig
	var kv []string
	for _, k := range []string{"system.namespaceMinRetentionLocal", "history.retentionTimerJitterDuration", "system.namespaceCacheRefreshInterval"} {
		kv = append(kv, k+"="+dc[k])
	}
	return fmt.Sprintf("server %s (%s, dynamic config %s)", srv.Info().ServerVersion, srv.Persistence(), strings.Join(kv, ", "))
}

func testOP05RetentionEnforced(t *testing.T, chk *harness.Check, srv *harness.Server) {
	ctx := harness.Context(t, time.Minute)
	o := retentionEnforced{window: window(5 * time.Second), early: retentionEarly}
	name := harness.UniqueID(t, "op05")
	n, err := registerRetentionNS(ctx, t, srv.Address(), name, o.window.retention, enumspb.ARCHIVAL_STATE_DISABLED)
	o.registerErr = err
	var run closedRun
	if err == nil {
		run = n.closeRun(ctx, t)
		o.rm = n.watch(ctx, run, o.window)
		o.listed, _, o.visErr = n.waitUnlisted(ctx, run.id)
	}
	harness.Decide(chk, retentionEnforcedPredicate, o, fmt.Sprintf(
		"%s; namespace %s registered with %s and archival disabled (error: %v); completed run %s/%s: %s after close; visibility rows then: %d (%v)",
		retentionConfig(srv), name, o.window, o.registerErr, run.id, harness.ShortID(run.runID), o.rm, o.listed, o.visErr),
		map[string]float64{"retention_s": o.window.retention.Seconds(), "removed_after_close_s": o.rm.goneAt.Seconds(), "last_found_s": o.rm.presentUntil.Seconds()})
}

func testOP05RetentionPerNamespace(t *testing.T, chk *harness.Check, srv *harness.Server) {
	ctx := harness.Context(t, time.Minute)
	o := retentionPerNamespace{a: window(3 * time.Second), b0: window(12 * time.Second), b1: window(3 * time.Second), early: retentionEarly}
	nameA, nameB := harness.UniqueID(t, "op05-a"), harness.UniqueID(t, "op05-b")
	a, errA := registerRetentionNS(ctx, t, srv.Address(), nameA, o.a.retention, enumspb.ARCHIVAL_STATE_DISABLED)
	b, errB := registerRetentionNS(ctx, t, srv.Address(), nameB, o.b0.retention, enumspb.ARCHIVAL_STATE_DISABLED)
	if o.registerErr = errors.Join(errA, errB); o.registerErr != nil {
		harness.Decide(chk, retentionPerNamespacePredicate, o, fmt.Sprintf("%s; registering %s (%s) and %s (%s): %v",
			retentionConfig(srv), nameA, o.a.retention, nameB, o.b0.retention, o.registerErr), nil)
		return
	}
	a1, b1 := a.closeRun(ctx, t), b.closeRun(ctx, t)
	// B's update comes right after b1 closed; b2 closes once a1 is removed,
	// seconds later, by when the history service's namespace cache
	// (refreshed every retentionCacheRefresh) has the new retention.
	updated := time.Now()
	o.updateErr = updateRetention(ctx, t, srv.Address(), nameB, o.b1.retention)
	cfg, err := describeNS(ctx, t, srv.Address(), nameB)
	if err != nil {
		t.Fatalf("describe namespace %s: %v", nameB, err)
	}
	o.describedB = cfg.GetWorkflowExecutionRetentionTtl().AsDuration()
	bDone := make(chan removal, 1)
	go func() { bDone <- b.watch(ctx, b1, o.b0) }()
	o.a1 = a.watch(ctx, a1, o.a)
	b2 := b.closeRun(ctx, t)
	o.b2 = b.watch(ctx, b2, o.b1)
	o.bBefore = <-bDone
	harness.Decide(chk, retentionPerNamespacePredicate, o, fmt.Sprintf(
		"%s. Namespace A %s, %s; namespace B %s, %s, then updated to %s (error: %v; described retention %s) right after run b1 closed. "+
			"a1 %s/%s: %s after close; b1 %s/%s (closed before the update): %s after close; b2 %s/%s closed %.2fs after the update: %s after close",
		retentionConfig(srv), nameA, o.a, nameB, o.b0, o.b1.retention, o.updateErr, o.describedB,
		a1.id, harness.ShortID(a1.runID), o.a1, b1.id, harness.ShortID(b1.runID), o.bBefore, b2.id, harness.ShortID(b2.runID), b2.closed.Sub(updated).Seconds(), o.b2),
		map[string]float64{"a1_removed_s": o.a1.goneAt.Seconds(), "b1_removed_s": o.bBefore.goneAt.Seconds(), "b2_removed_s": o.b2.goneAt.Seconds()})
}

func testOP05Archival(t *testing.T, chk *harness.Check, srv *harness.Server) {
	ctx := harness.Context(t, time.Minute)
	w := window(2 * time.Second)
	var o retentionArchival
	name := harness.UniqueID(t, "op05-arch")
	n, err := registerRetentionNS(ctx, t, srv.Address(), name, w.retention, enumspb.ARCHIVAL_STATE_ENABLED)
	o.registerErr = err
	if err != nil {
		harness.Decide(chk, retentionArchivalPredicate, o, fmt.Sprintf("%s, archival dir %s; registering %s with archival enabled and %s: %v",
			retentionConfig(srv), srv.Info().ArchivalDir, name, w.retention, err), nil)
		return
	}
	cfg, err := describeNS(ctx, t, srv.Address(), name)
	if err != nil {
		t.Fatalf("describe namespace %s: %v", name, err)
	}
	o.historyState, o.visibilityState = cfg.GetHistoryArchivalState(), cfg.GetVisibilityArchivalState()
	run := n.closeRun(ctx, t)
	live, err := harness.History(ctx, n.c, run.id, run.runID)
	if err != nil {
		t.Fatalf("history before removal: %v", err)
	}
	o.liveEvents = len(live)
	o.rm = n.watch(ctx, run, w)
	var hfiles, vfiles []string
	hfiles, err = archivedFiles(cfg.GetHistoryArchivalUri())
	vfiles, o.filesErr = archivedFiles(cfg.GetVisibilityArchivalUri())
	o.filesErr = errors.Join(err, o.filesErr)
	o.historyFiles, o.visibilityFiles = len(hfiles), len(vfiles)
	archived, flag, err := readHistory(ctx, n, run)
	o.archivedEvents, o.archivedFlag, o.readErr = len(archived), flag, err
	if len(archived) > 0 {
		o.archivedLast = archived[len(archived)-1].GetEventType()
	}
	var listed []string
	o.listArchivedErr = harness.WaitFor(ctx, deleteDeadline, retentionPoll, "the archived visibility record", func(ctx context.Context) (bool, error) {
		resp, err := n.c.WorkflowService().ListArchivedWorkflowExecutions(ctx, &workflowservice.ListArchivedWorkflowExecutionsRequest{
			Namespace: n.name, PageSize: 10, Query: fmt.Sprintf("WorkflowId = '%s'", run.id),
		})
		listed = listed[:0]
		for _, e := range resp.GetExecutions() {
			listed = append(listed, fmt.Sprintf("%s %s", harness.ShortID(e.GetExecution().GetRunId()), e.GetStatus()))
			if e.GetExecution().GetRunId() == run.runID && e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
				o.listedArchived = true
			}
		}
		return o.listedArchived, err
	})
	harness.Decide(chk, retentionArchivalPredicate, o, fmt.Sprintf(
		"%s, archival dir %s; namespace %s with %s, history archival %s at %s, visibility archival %s at %s; completed run %s/%s (%d events): %s after close; "+
			"archive files: history %v, visibility %v (%v); GetWorkflowExecutionHistory then: %d events, archived=%t, last %s (%v); "+
			"ListArchivedWorkflowExecutions: %v (%v)",
		retentionConfig(srv), srv.Info().ArchivalDir, name, w, o.historyState, cfg.GetHistoryArchivalUri(), o.visibilityState, cfg.GetVisibilityArchivalUri(),
		run.id, harness.ShortID(run.runID), o.liveEvents, o.rm, hfiles, vfiles, o.filesErr, o.archivedEvents, o.archivedFlag, o.archivedLast, o.readErr,
		listed, o.listArchivedErr),
		map[string]float64{"removed_after_close_s": o.rm.goneAt.Seconds(), "archived_events": float64(o.archivedEvents)})
}

// readHistory reads a run's whole history through GetWorkflowExecutionHistory
// and reports whether the server marked it as read from the archive.
func readHistory(ctx context.Context, n retentionNS, run closedRun) ([]*historypb.HistoryEvent, bool, error) {
	var events []*historypb.HistoryEvent
	archived := false
	var token []byte
	for {
		resp, err := n.c.WorkflowService().GetWorkflowExecutionHistory(ctx, &workflowservice.GetWorkflowExecutionHistoryRequest{
			Namespace: n.name, Execution: &commonpb.WorkflowExecution{WorkflowId: run.id, RunId: run.runID}, NextPageToken: token,
		})
		if err != nil {
			return events, archived, err
		}
		events = append(events, resp.GetHistory().GetEvents()...)
		archived = archived || resp.GetArchived()
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return events, archived, nil
		}
	}
}
