package op

import (
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of OP-05's checks, each a named predicate over what
// the server returned for a deleted or expired run: describe, history and
// visibility answers, the times a run was last found and first missing, and
// what the file-store archive holds.

func retentionPredicates() []predicate.Spec {
	return []predicate.Spec{
		retentionDeletePredicate.Spec(),
		retentionDeleteRunningPredicate.Spec(),
		retentionEnforcedPredicate.Spec(),
		retentionPerNamespacePredicate.Spec(),
		retentionArchivalPredicate.Spec(),
	}
}

// retentionDelete is what deleting a closed run did (OP-05.delete-execution).
type retentionDelete struct {
	listedBefore int     // visibility rows of the run before the delete
	deleteErr    error   // DeleteWorkflowExecution's
	rm           removal // describe after the delete
	historyErr   error   // GetWorkflowExecutionHistory once describe returned NotFound
	listed       int     // ListWorkflowExecutions rows then
	counted      int     // CountWorkflowExecutions then
	visErr       error   // an error of either, or the deadline of the wait for them to reach 0
}

// deletedClosed: the closed run was listed, the delete was accepted, and
// afterwards describe and history return NotFound and neither list nor
// count returns it.
func deletedClosed(o retentionDelete) bool {
	return o.listedBefore == 1 && o.deleteErr == nil && o.rm.gone && isNotFound(o.historyErr) &&
		o.visErr == nil && o.listed == 0 && o.counted == 0
}

var retentionDeletePredicate = predicate.New("OP-05.delete-execution", "deletedClosed", deletedClosed,
	predicate.Case[retentionDelete]{Name: "removed from the store and visibility",
		In: retentionDelete{listedBefore: 1, rm: removal{gone: true, goneAt: 40 * time.Millisecond}, historyErr: serviceerror.NewNotFound("workflow execution not found")}, Want: true},
	predicate.Case[retentionDelete]{Name: "the delete is not implemented",
		In: retentionDelete{listedBefore: 1, deleteErr: serviceerror.NewUnimplemented("DeleteWorkflowExecution"), listed: 1, counted: 1}, Want: false},
	predicate.Case[retentionDelete]{Name: "describe no longer finds it, but visibility still lists it",
		In: retentionDelete{listedBefore: 1, rm: removal{gone: true, goneAt: 40 * time.Millisecond}, historyErr: serviceerror.NewNotFound("workflow execution not found"),
			listed: 1, counted: 1, visErr: errors.New("waiting for visibility to drop it: gave up after 30s")}, Want: false},
	predicate.Case[retentionDelete]{Name: "the delete was accepted but the run is still there",
		In: retentionDelete{listedBefore: 1, rm: removal{presentUntil: 30 * time.Second, err: errors.New("waiting for removal: gave up after 30s")}, listed: 1, counted: 1}, Want: false},
)

// retentionDeleteRunning is what deleting a running execution did
// (OP-05.delete-running).
type retentionDeleteRunning struct {
	statusBefore enumspb.WorkflowExecutionStatus // describe before the delete
	deleteErr    error
	closeEvent   enumspb.EventType // the close event a long poll started before the delete returned
	closeReason  string            // its reason, for a termination
	rm           removal           // describe after the delete
	listed       int               // visibility rows once removed
	visErr       error
}

// terminatedThenRemoved: the run was running, the delete was accepted, a
// long poll on its close event saw it terminated, then describe returned
// NotFound and visibility no longer lists it.
func terminatedThenRemoved(o retentionDeleteRunning) bool {
	return o.statusBefore == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && o.deleteErr == nil &&
		o.closeEvent == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED && o.rm.gone && o.visErr == nil && o.listed == 0
}

var retentionDeleteRunningPredicate = predicate.New("OP-05.delete-running", "terminatedThenRemoved", terminatedThenRemoved,
	predicate.Case[retentionDeleteRunning]{Name: "terminated by the delete, then removed",
		In: retentionDeleteRunning{statusBefore: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, closeEvent: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
			closeReason: "Delete workflow execution", rm: removal{gone: true, goneAt: 50 * time.Millisecond}}, Want: true},
	predicate.Case[retentionDeleteRunning]{Name: "only closed runs can be deleted",
		In: retentionDeleteRunning{statusBefore: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, deleteErr: serviceerror.NewFailedPrecondition("workflow is running"),
			rm: removal{err: errors.New("waiting for removal: gave up after 30s")}, listed: 1}, Want: false},
	predicate.Case[retentionDeleteRunning]{Name: "removed without a termination (the run never closed)",
		In: retentionDeleteRunning{statusBefore: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, rm: removal{gone: true, goneAt: 50 * time.Millisecond}}, Want: false},
	predicate.Case[retentionDeleteRunning]{Name: "terminated but kept",
		In: retentionDeleteRunning{statusBefore: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, closeEvent: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
			rm: removal{err: errors.New("waiting for removal: gave up after 30s")}, listed: 1}, Want: false},
)

// retentionWindow is when retention may remove a run closed at 0: not
// before the retention, and no later than the retention plus the timer
// jitter (history.retentionTimerJitterDuration, as configured) plus our
// stated slack for the timer queue and the poll.
type retentionWindow struct {
	retention, jitter, slack time.Duration
}

// holds: the run was removed inside the window, and was last found no
// earlier than early before its retention elapsed (an observation near the
// end of the retention, showing it was kept until then).
func (w retentionWindow) holds(r removal, early time.Duration) bool {
	return r.gone && r.goneAt >= w.retention && r.goneAt <= w.retention+w.jitter+w.slack && r.presentUntil >= w.retention-early
}

// retentionEnforced is what retention did to a closed run in a namespace
// with a short retention (OP-05.retention-enforced).
type retentionEnforced struct {
	window      retentionWindow
	early       time.Duration // the run must be found within this much of its retention's end
	registerErr error         // registering the namespace with the short retention
	rm          removal
	listed      int // visibility rows once removed
	visErr      error
}

// removedAfterRetention: the namespace was accepted with its short
// retention, the closed run was still found in the last stretch before the
// retention elapsed, was removed inside the window, and visibility no
// longer lists it.
func removedAfterRetention(o retentionEnforced) bool {
	return o.registerErr == nil && o.window.holds(o.rm, o.early) && o.visErr == nil && o.listed == 0
}

var retentionEnforcedPredicate = predicate.New("OP-05.retention-enforced", "removedAfterRetention", removedAfterRetention,
	predicate.Case[retentionEnforced]{Name: "kept 4.9 s, removed 5.6 s after close (retention 5 s, jitter 1 s)",
		In: retentionEnforced{window: retentionWindow{5 * time.Second, time.Second, 5 * time.Second}, early: time.Second,
			rm: removal{gone: true, presentUntil: 4900 * time.Millisecond, goneAt: 5600 * time.Millisecond}}, Want: true},
	predicate.Case[retentionEnforced]{Name: "a retention under the minimum is refused",
		In: retentionEnforced{window: retentionWindow{5 * time.Second, time.Second, 5 * time.Second}, early: time.Second,
			registerErr: serviceerror.NewInvalidArgument("WorkflowExecutionRetentionPeriod is less than the minimum")}, Want: false},
	predicate.Case[retentionEnforced]{Name: "never removed",
		In: retentionEnforced{window: retentionWindow{5 * time.Second, time.Second, 5 * time.Second}, early: time.Second,
			rm: removal{presentUntil: 11 * time.Second, err: errors.New("gave up")}, listed: 1}, Want: false},
	predicate.Case[retentionEnforced]{Name: "removed before the retention elapsed",
		In: retentionEnforced{window: retentionWindow{5 * time.Second, time.Second, 5 * time.Second}, early: time.Second,
			rm: removal{gone: true, presentUntil: 1900 * time.Millisecond, goneAt: 2 * time.Second}}, Want: false},
)

// retentionPerNamespace is what retention did in two namespaces, one of
// them updated (OP-05.retention-per-namespace): run a1 closed in A, b1 in B
// before B's update, b2 in B after it.
type retentionPerNamespace struct {
	a, b0, b1       retentionWindow // A's retention, B's before and after the update
	early           time.Duration
	registerErr     error
	updateErr       error
	describedB      time.Duration // B's retention as described after the update
	a1, bBefore, b2 removal
}

// ownRetentions: each namespace removed its run inside its own retention's
// window (the two windows disjoint, so that one namespace using the other's
// retention cannot pass), and B's update was accepted, described, and
// applied to the run closed after it.
func ownRetentions(o retentionPerNamespace) bool {
	disjoint := func(x, y retentionWindow) bool {
		return x.retention+x.jitter+x.slack < y.retention || y.retention+y.jitter+y.slack < x.retention
	}
	return o.registerErr == nil && o.updateErr == nil && o.describedB == o.b1.retention &&
		disjoint(o.a, o.b0) && disjoint(o.b0, o.b1) &&
		o.a.holds(o.a1, o.early) && o.b0.holds(o.bBefore, o.early) && o.b1.holds(o.b2, o.early)
}

var retentionPerNamespacePredicate = predicate.New("OP-05.retention-per-namespace", "ownRetentions", ownRetentions,
	predicate.Case[retentionPerNamespace]{Name: "A 3 s, B 12 s then 3 s: each run removed on its own",
		In: retentionPerNamespace{a: retentionWindow{3 * time.Second, time.Second, 5 * time.Second}, b0: retentionWindow{12 * time.Second, time.Second, 5 * time.Second},
			b1: retentionWindow{3 * time.Second, time.Second, 5 * time.Second}, early: time.Second, describedB: 3 * time.Second,
			a1:      removal{gone: true, presentUntil: 2900 * time.Millisecond, goneAt: 3500 * time.Millisecond},
			bBefore: removal{gone: true, presentUntil: 11900 * time.Millisecond, goneAt: 12300 * time.Millisecond},
			b2:      removal{gone: true, presentUntil: 3200 * time.Millisecond, goneAt: 3300 * time.Millisecond}}, Want: true},
	predicate.Case[retentionPerNamespace]{Name: "one retention for the whole server: B's run removed at A's",
		In: retentionPerNamespace{a: retentionWindow{3 * time.Second, time.Second, 5 * time.Second}, b0: retentionWindow{12 * time.Second, time.Second, 5 * time.Second},
			b1: retentionWindow{3 * time.Second, time.Second, 5 * time.Second}, early: time.Second, describedB: 3 * time.Second,
			a1:      removal{gone: true, presentUntil: 2900 * time.Millisecond, goneAt: 3500 * time.Millisecond},
			bBefore: removal{gone: true, presentUntil: 2900 * time.Millisecond, goneAt: 3500 * time.Millisecond},
			b2:      removal{gone: true, presentUntil: 3200 * time.Millisecond, goneAt: 3300 * time.Millisecond}}, Want: false},
	predicate.Case[retentionPerNamespace]{Name: "the update is not applied to later runs",
		In: retentionPerNamespace{a: retentionWindow{3 * time.Second, time.Second, 5 * time.Second}, b0: retentionWindow{12 * time.Second, time.Second, 5 * time.Second},
			b1: retentionWindow{3 * time.Second, time.Second, 5 * time.Second}, early: time.Second, describedB: 3 * time.Second,
			a1:      removal{gone: true, presentUntil: 2900 * time.Millisecond, goneAt: 3500 * time.Millisecond},
			bBefore: removal{gone: true, presentUntil: 11900 * time.Millisecond, goneAt: 12300 * time.Millisecond},
			b2:      removal{gone: true, presentUntil: 12100 * time.Millisecond, goneAt: 12400 * time.Millisecond}}, Want: false},
	predicate.Case[retentionPerNamespace]{Name: "the update is refused",
		In: retentionPerNamespace{a: retentionWindow{3 * time.Second, time.Second, 5 * time.Second}, b0: retentionWindow{12 * time.Second, time.Second, 5 * time.Second},
			b1: retentionWindow{3 * time.Second, time.Second, 5 * time.Second}, early: time.Second, describedB: 12 * time.Second,
			updateErr: serviceerror.NewInvalidArgument("retention is immutable")}, Want: false},
)

// retentionArchival is what the file-store archiver kept of a run removed by
// retention (OP-05.archival-filestore).
type retentionArchival struct {
	registerErr     error
	historyState    enumspb.ArchivalState // the namespace's, as described
	visibilityState enumspb.ArchivalState
	rm              removal // the run leaving the main store
	historyFiles    int     // files under the history archival URI
	visibilityFiles int     // files under the visibility archival URI
	filesErr        error
	liveEvents      int // the history's events before removal
	archivedEvents  int // events GetWorkflowExecutionHistory returned after removal
	archivedFlag    bool
	archivedLast    enumspb.EventType
	readErr         error
	listedArchived  bool // ListArchivedWorkflowExecutions returned the run, completed
	listArchivedErr error
}

// archivedAndReadBack: archival was on for the namespace, the run left the
// main store, the archive holds files for its history and visibility, and
// the API read the full history back marked as archived, and listed the run
// from the visibility archive.
func archivedAndReadBack(o retentionArchival) bool {
	return o.registerErr == nil && o.historyState == enumspb.ARCHIVAL_STATE_ENABLED && o.visibilityState == enumspb.ARCHIVAL_STATE_ENABLED &&
		o.rm.gone && o.filesErr == nil && o.historyFiles > 0 && o.visibilityFiles > 0 &&
		o.readErr == nil && o.archivedFlag && o.liveEvents > 0 && o.archivedEvents == o.liveEvents &&
		o.archivedLast == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED && o.listArchivedErr == nil && o.listedArchived
}

var retentionArchivalPredicate = predicate.New("OP-05.archival-filestore", "archivedAndReadBack", archivedAndReadBack,
	predicate.Case[retentionArchival]{Name: "archived, removed, read back and listed",
		In: retentionArchival{historyState: enumspb.ARCHIVAL_STATE_ENABLED, visibilityState: enumspb.ARCHIVAL_STATE_ENABLED, rm: removal{gone: true, goneAt: 2500 * time.Millisecond},
			historyFiles: 1, visibilityFiles: 1, liveEvents: 8, archivedEvents: 8, archivedFlag: true, archivedLast: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, listedArchived: true}, Want: true},
	predicate.Case[retentionArchival]{Name: "archival not configured on the cluster",
		In: retentionArchival{registerErr: serviceerror.NewInvalidArgument("cluster is not configured for archival")}, Want: false},
	predicate.Case[retentionArchival]{Name: "removed without archiving: history gone",
		In: retentionArchival{historyState: enumspb.ARCHIVAL_STATE_ENABLED, visibilityState: enumspb.ARCHIVAL_STATE_ENABLED, rm: removal{gone: true, goneAt: 2500 * time.Millisecond},
			liveEvents: 8, readErr: serviceerror.NewNotFound("workflow execution not found"), listArchivedErr: nil}, Want: false},
	predicate.Case[retentionArchival]{Name: "history archived but not the visibility record",
		In: retentionArchival{historyState: enumspb.ARCHIVAL_STATE_ENABLED, visibilityState: enumspb.ARCHIVAL_STATE_ENABLED, rm: removal{gone: true, goneAt: 2500 * time.Millisecond},
			historyFiles: 1, liveEvents: 8, archivedEvents: 8, archivedFlag: true, archivedLast: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED}, Want: false},
)
