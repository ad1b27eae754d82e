package op

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of OP-01's checks.

func deployPredicates() []predicate.Spec {
	return []predicate.Spec{
		deployEmbeddedPredicate.Spec(),
		deployRestartPredicate.Spec(),
		deployExternalPredicate.Spec(),
		deploySplitPredicate.Spec(),
	}
}

// deployEmbedded is what a dedicated server started from the durabench
// binary did (OP-01.embedded-binary).
type deployEmbedded struct {
	bin           string // the durabench binary the harness runs, symlinks resolved
	exe           string // /proc/<pid>/exe of the server process
	childPID      int    // the process the harness started
	announcedPID  int    // the pid the server announced as ready
	persistence   string // as the server announced it
	infoVersion   string // server version the server announced
	systemVersion string // server version GetSystemInfo returned to the client
	activities    int    // ActivityTaskCompleted events in the run's history
	result, want  string
	err           error // starting the run, its result, or GetSystemInfo
}

// embeddedBinaryRuns: the process that served the workflow is the durabench
// binary itself (not a launcher of another program), it keeps its data in
// SQLite, the version it announced is the one its API reports, and a run with
// an activity completed with the expected result.
func embeddedBinaryRuns(o deployEmbedded) bool {
	return o.err == nil && o.bin != "" && o.exe == o.bin && o.childPID != 0 && o.announcedPID == o.childPID &&
		strings.HasPrefix(o.persistence, "sqlite") && o.infoVersion != "" && o.infoVersion == o.systemVersion &&
		o.activities >= 1 && o.result == o.want
}

var deployCaseEmbedded = deployEmbedded{bin: "/work/main/bin/durabench", exe: "/work/main/bin/durabench", childPID: 4242, announcedPID: 4242,
	persistence: "sqlite (in memory)", infoVersion: "1.32.0", systemVersion: "1.32.0", activities: 1, result: "step:x@1", want: "step:x@1"}

var deployEmbeddedPredicate = predicate.New("OP-01.embedded-binary", "embeddedBinaryRuns", embeddedBinaryRuns,
	predicate.Case[deployEmbedded]{Name: "durabench serves on in-memory SQLite and completes the run", In: deployCaseEmbedded, Want: true},
	predicate.Case[deployEmbedded]{Name: "the server process is another program (a separately installed server)",
		In: func() deployEmbedded { o := deployCaseEmbedded; o.exe = "/usr/local/bin/temporal"; return o }(), Want: false},
	predicate.Case[deployEmbedded]{Name: "the binary launches a server process of another pid",
		In: func() deployEmbedded { o := deployCaseEmbedded; o.announcedPID = 4250; return o }(), Want: false},
	predicate.Case[deployEmbedded]{Name: "it needs an external database",
		In: func() deployEmbedded {
			o := deployCaseEmbedded
			o.persistence = "postgres12_pgx temporal on 127.0.0.1:5432"
			return o
		}(), Want: false},
	predicate.Case[deployEmbedded]{Name: "the server starts but the run never completes",
		In: func() deployEmbedded {
			o := deployCaseEmbedded
			o.activities, o.result, o.err = 0, "", errors.New("context deadline exceeded")
			return o
		}(), Want: false},
)

// deployRestart is what a run waiting on a signal saw across a clean stop and
// restart of a server on a SQLite file (OP-01.persistent-restart).
type deployRestart struct {
	persistence, persistenceAfter string // as announced at the first start and after the restart
	pidBefore, pidAfter           int
	stopErr, restartErr           error
	before                        []enumspb.EventType // the run's history just before the stop
	describeErr                   error               // describe after the restart
	runID, runIDAfter             string              // the run started; the run describe found after the restart
	statusAfter                   enumspb.WorkflowExecutionStatus
	after                         []enumspb.EventType // the run's history after the restart, before the signal
	result, want                  string
	err                           error // signal or result after the restart
}

// persistedAcrossRestart: a server on a SQLite file stopped cleanly and a new
// process started on the same file; the run (its activity completed before
// the stop) was there, running, with every pre-stop event in its history,
// and it completed after the signal with the expected result (each step once).
func persistedAcrossRestart(o deployRestart) bool {
	return strings.HasPrefix(o.persistence, "sqlite file ") && o.persistenceAfter == o.persistence &&
		o.stopErr == nil && o.restartErr == nil && o.pidAfter != 0 && o.pidAfter != o.pidBefore &&
		slices.Contains(o.before, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) &&
		o.describeErr == nil && o.runID != "" && o.runIDAfter == o.runID && o.statusAfter == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING &&
		len(o.after) >= len(o.before) && slices.Equal(o.after[:len(o.before)], o.before) &&
		o.err == nil && o.result == o.want
}

var deployCaseHistory = []enumspb.EventType{
	enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED,
	enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED,
	enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED,
	enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
}

var deployCaseRestart = deployRestart{persistence: "sqlite file /tmp/s/temporal.db", persistenceAfter: "sqlite file /tmp/s/temporal.db",
	pidBefore: 100, pidAfter: 200, before: deployCaseHistory, runID: "r1", runIDAfter: "r1",
	statusAfter: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, after: deployCaseHistory,
	result: "before:x@1|go|after:x@1", want: "before:x@1|go|after:x@1"}

var deployRestartPredicate = predicate.New("OP-01.persistent-restart", "persistedAcrossRestart", persistedAcrossRestart,
	predicate.Case[deployRestart]{Name: "file server: the run is there after the restart and completes", In: deployCaseRestart, Want: true},
	predicate.Case[deployRestart]{Name: "in-memory server: the run is gone after the restart",
		In: deployRestart{persistence: "sqlite (in memory)", persistenceAfter: "sqlite (in memory)", pidBefore: 100, pidAfter: 200,
			before: deployCaseHistory, runID: "r1", describeErr: errors.New("workflow not found for ID: deploy-1"),
			err: errors.New("workflow not found for ID: deploy-1"), want: "before:x@1|go|after:x@1"}, Want: false},
	predicate.Case[deployRestart]{Name: "the run survives but its first activity runs again",
		In: func() deployRestart { o := deployCaseRestart; o.result = "before:x@2|go|after:x@1"; return o }(), Want: false},
	predicate.Case[deployRestart]{Name: "the server ignores SIGTERM and is killed",
		In: func() deployRestart {
			o := deployCaseRestart
			o.stopErr = errors.New("pid 100 ignored SIGTERM for 30s")
			return o
		}(), Want: false},
)

// deployExternal is what the reference scenario did when this package's
// test binary ran it as a child pointed at a server by the environment only
// (OP-01.external-server).
type deployExternal struct {
	address, namespace string // what TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE named
	exitCode           int    // the child's; -1 when it did not run to an exit
	envMode            string // the evidence environment the child wrote
	envAddress         string
	envNamespace       string
	probeErr           string // the probe's run error, as it reported it
	probeResult        string
	want               string
	describeStatus     enumspb.WorkflowExecutionStatus // the probe's run, described by the parent in namespace
	describeType       string
	inDefault          bool   // describe found the run in namespace default too
	parentResult       string // the run's result as the parent read it
}

// externalRuns: the child exited 0 in external mode, on the address and
// namespace it was given (not default), the probe's run completed with the
// expected result, and the parent finds that completed run of the reference
// type in that namespace on that server, and not in default.
func externalRuns(o deployExternal) bool {
	return o.exitCode == 0 && o.envMode == "external" && o.address != "" && o.envAddress == o.address &&
		o.namespace != "default" && o.envNamespace == o.namespace &&
		o.probeErr == "" && o.probeResult == o.want &&
		o.describeStatus == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED && o.describeType == deployFlowType &&
		!o.inDefault && o.parentResult == o.want
}

var deployCaseExternal = deployExternal{address: "127.0.0.1:7233", namespace: "deploy-external", envMode: "external",
	envAddress: "127.0.0.1:7233", envNamespace: "deploy-external", probeResult: "step:external@1", want: "step:external@1",
	describeStatus: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, describeType: deployFlowType, parentResult: "step:external@1"}

var deployExternalPredicate = predicate.New("OP-01.external-server", "externalRuns", externalRuns,
	predicate.Case[deployExternal]{Name: "the child runs the scenario on the named server and namespace", In: deployCaseExternal, Want: true},
	predicate.Case[deployExternal]{Name: "the child ignores TEMPORAL_ADDRESS and starts a server of its own",
		In: func() deployExternal {
			o := deployCaseExternal
			o.envMode, o.envAddress, o.describeStatus, o.describeType, o.parentResult = "embedded", "127.0.0.1:40111", 0, "", ""
			return o
		}(), Want: false},
	predicate.Case[deployExternal]{Name: "TEMPORAL_NAMESPACE ignored: the run lands in default",
		In: func() deployExternal {
			o := deployCaseExternal
			o.envNamespace, o.inDefault, o.describeStatus, o.describeType, o.parentResult = "default", true, 0, "", ""
			return o
		}(), Want: false},
	predicate.Case[deployExternal]{Name: "the probe's run fails on the external server",
		In: func() deployExternal {
			o := deployCaseExternal
			o.exitCode, o.probeErr, o.probeResult = 1, "workflow execution error: activity task timed out", ""
			o.describeStatus, o.parentResult = enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, ""
			return o
		}(), Want: false},
)

// deployProc is one process of a split server.
type deployProc struct {
	pid, announced int
	services       []string
	membership     []string // its ringpop address per service
}

// deploySplit is what a server split into one process per service did
// (OP-01.services-split).
type deploySplit struct {
	procs        []deployProc
	persistence  string
	ready, took  time.Duration
	runID        string
	result, want string
	err          error
}

// servicesSplit: four distinct processes, each announcing exactly one of
// frontend, history, matching and worker and a ring address for it, and
// the reference workflow completed through them with its expected result.
func servicesSplit(o deploySplit) bool {
	if o.err != nil || o.result != o.want || o.runID == "" || len(o.procs) != 4 {
		return false
	}
	pids := map[int]bool{}
	var services []string
	for _, p := range o.procs {
		if p.pid != p.announced || pids[p.pid] || len(p.services) != 1 || len(p.membership) != 1 {
			return false
		}
		pids[p.pid] = true
		services = append(services, p.services[0])
	}
	slices.Sort(services)
	return slices.Equal(services, []string{"frontend", "history", "matching", "worker"})
}

func splitProcs() []deployProc {
	return []deployProc{
		{pid: 11, announced: 11, services: []string{"frontend"}, membership: []string{"frontend 127.0.0.1:20001"}},
		{pid: 12, announced: 12, services: []string{"history"}, membership: []string{"history 127.0.0.1:20002"}},
		{pid: 13, announced: 13, services: []string{"matching"}, membership: []string{"matching 127.0.0.1:20003"}},
		{pid: 14, announced: 14, services: []string{"worker"}, membership: []string{"worker 127.0.0.1:20004"}},
	}
}

var goodSplit = deploySplit{procs: splitProcs(), runID: "r1", result: "step:split@1", want: "step:split@1"}

var deploySplitPredicate = predicate.New("OP-01.services-split", "servicesSplit", servicesSplit,
	predicate.Case[deploySplit]{Name: "four processes, one service each, workflow completed", In: goodSplit, Want: true},
	predicate.Case[deploySplit]{Name: "one process ran every service", In: deploySplit{
		procs: []deployProc{{pid: 11, announced: 11, services: []string{"frontend", "history", "matching", "worker"}}}, runID: "r1", result: goodSplit.want, want: goodSplit.want}, Want: false},
	predicate.Case[deploySplit]{Name: "no history service joined: the start timed out", In: deploySplit{
		procs: splitProcs(), err: errors.New("start: context deadline exceeded"), want: goodSplit.want}, Want: false},
	predicate.Case[deploySplit]{Name: "matching twice, worker missing", In: deploySplit{
		procs: append(splitProcs()[:3], deployProc{pid: 15, announced: 15, services: []string{"matching"}, membership: []string{"matching 127.0.0.1:20005"}}),
		runID: "r1", result: goodSplit.want, want: goodSplit.want}, Want: false},
)

func (o deploySplit) describe() string {
	var parts []string
	for _, p := range o.procs {
		parts = append(parts, fmt.Sprintf("pid %d (announced %d) runs %v, ring %v", p.pid, p.announced, p.services, p.membership))
	}
	return fmt.Sprintf("%d processes on %s, all ready %.1f s after the first started: %s; the reference workflow through the frontend process returned %q in %.2f s (want %q, run %s, error %v)",
		len(o.procs), o.persistence, o.ready.Seconds(), strings.Join(parts, "; "), o.result, o.took.Seconds(), o.want, o.runID, o.err)
}
