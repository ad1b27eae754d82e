package op

import (
	"errors"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of OP-07's checks.

func tenantPredicates() []predicate.Spec {
	return []predicate.Spec{
		tenantSameIDPredicate.Spec(), tenantListPredicate.Spec(), tenantWorkerPredicate.Spec(),
		tenantThrottlePredicate.Spec(), tenantNeighbourPredicate.Spec(), tenantAuthPredicate.Spec(),
	}
}

// tenantRun is what one namespace's run with the shared workflow id did
// (OP-07.namespace-isolation).
type tenantRun struct {
	runID    string
	startErr error
	sent     string   // the note signalled to this namespace's run
	notes    []string // what its query answered after both were signalled
	status   enumspb.WorkflowExecutionStatus
}

// tenantSameID is one workflow id used in two namespaces: A's run is told it
// is done, B's is not.
type tenantSameID struct {
	a, b     tenantRun
	crossErr error // signal sent in B to an id only A has
}

// namespacesSeparateRuns: both starts succeeded with different run ids, each
// run's query shows only the note signalled in its own namespace, finishing
// A's run left B's running, and a signal in B to an id that only A has is
// NotFound.
func namespacesSeparateRuns(o tenantSameID) bool {
	ok := func(r tenantRun) bool {
		return r.startErr == nil && r.runID != "" && slices.Equal(r.notes, []string{r.sent})
	}
	return ok(o.a) && ok(o.b) && o.a.runID != o.b.runID && o.a.sent != o.b.sent &&
		o.a.status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED && o.b.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING &&
		tenantIsNotFound(o.crossErr)
}

var (
	tenantCaseA  = tenantRun{runID: "r-a", sent: "for-a", notes: []string{"for-a"}, status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED}
	tenantCaseB  = tenantRun{runID: "r-b", sent: "for-b", notes: []string{"for-b"}, status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING}
	tenantCaseNF = serviceerror.NewNotFound("workflow not found")
)

var tenantSameIDPredicate = predicate.New("OP-07.namespace-isolation", "namespacesSeparateRuns", namespacesSeparateRuns,
	predicate.Case[tenantSameID]{Name: "two runs, each with its own note; A done, B running; cross signal not found",
		In: tenantSameID{a: tenantCaseA, b: tenantCaseB, crossErr: tenantCaseNF}, Want: true},
	predicate.Case[tenantSameID]{Name: "one shared id space: the second start is refused",
		In: tenantSameID{a: tenantCaseA, b: tenantRun{sent: "for-b", startErr: serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "", "r-a")}, crossErr: tenantCaseNF}, Want: false},
	predicate.Case[tenantSameID]{Name: "signals cross: both runs hold both notes",
		In: tenantSameID{a: tenantRun{runID: "r-a", sent: "for-a", notes: []string{"for-a", "for-b"}, status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED},
			b: tenantRun{runID: "r-b", sent: "for-b", notes: []string{"for-a", "for-b"}, status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING}, crossErr: tenantCaseNF}, Want: false},
	predicate.Case[tenantSameID]{Name: "finishing A finished B too",
		In: tenantSameID{a: tenantCaseA, b: tenantRun{runID: "r-b", sent: "for-b", notes: []string{"for-b"}, status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED}, crossErr: tenantCaseNF}, Want: false},
	predicate.Case[tenantSameID]{Name: "a signal in B reached A's run",
		In: tenantSameID{a: tenantCaseA, b: tenantCaseB}, Want: false},
)

// tenantLists is what each namespace's list showed once its own runs were
// visible (OP-07.visibility-isolation).
type tenantLists struct {
	startedA, startedB []string // run ids started in each namespace
	listedA, listedB   []string // run ids each namespace's unfiltered list returned
	countA, countB     int64    // each namespace's count of the same runs
	err                error
}

// listsStayInNamespace: each namespace lists all of its own runs (so the
// list is caught up) and none of the other's, and counts as many as it lists.
func listsStayInNamespace(o tenantLists) bool {
	own := func(listed, started, other []string, count int64) bool {
		for _, r := range started {
			if !slices.Contains(listed, r) {
				return false
			}
		}
		for _, r := range other {
			if slices.Contains(listed, r) {
				return false
			}
		}
		return count == int64(len(listed))
	}
	return o.err == nil && len(o.startedA) > 0 && len(o.startedB) > 0 &&
		own(o.listedA, o.startedA, o.startedB, o.countA) && own(o.listedB, o.startedB, o.startedA, o.countB)
}

var tenantListPredicate = predicate.New("OP-07.visibility-isolation", "listsStayInNamespace", listsStayInNamespace,
	predicate.Case[tenantLists]{Name: "each list holds exactly its own runs",
		In: tenantLists{startedA: []string{"a1", "a2"}, startedB: []string{"b1"}, listedA: []string{"a2", "a1"}, listedB: []string{"b1"}, countA: 2, countB: 1}, Want: true},
	predicate.Case[tenantLists]{Name: "A's list shows B's run",
		In: tenantLists{startedA: []string{"a1", "a2"}, startedB: []string{"b1"}, listedA: []string{"a1", "a2", "b1"}, listedB: []string{"b1"}, countA: 3, countB: 1}, Want: false},
	predicate.Case[tenantLists]{Name: "the count crosses though the list does not",
		In: tenantLists{startedA: []string{"a1", "a2"}, startedB: []string{"b1"}, listedA: []string{"a1", "a2"}, listedB: []string{"b1"}, countA: 3, countB: 3}, Want: false},
	predicate.Case[tenantLists]{Name: "visibility never caught up: nothing proven",
		In: tenantLists{startedA: []string{"a1", "a2"}, startedB: []string{"b1"}, err: errors.New("waiting for the lists: gave up after 30s")}, Want: false},
)

// tenantWorkers is who ran the runs of two namespaces that share a task
// queue name (OP-07.worker-isolation).
type tenantWorkers struct {
	labelA, labelB string // the workers' labels and identities
	nsA, nsB       string
	resultA        string // A's run, while only A's worker ran
	errA           error
	tookA          time.Duration // A's run, start to result
	pollersB       []string      // identities polling the queue in B while only A's worker ran
	window         time.Duration // how long B's run was watched while only A's worker ran
	startedB       int           // workflow tasks B's run started in that window
	resultB        string        // B's run, once B's worker started
	errB           error
	startedByB     []string // identities that started B's workflow tasks
}

// workersStayInNamespace: A's worker ran A's run; in B, A's worker was not
// among the queue's pollers and B's run started no task over a window of at
// least ten times A's whole run (a task dispatched across namespaces would
// have started as fast as A's own: our margin); B's run was then run by B's
// worker alone.
func workersStayInNamespace(o tenantWorkers) bool {
	return o.errA == nil && strings.HasPrefix(o.resultA, o.labelA+" ") && strings.HasSuffix(o.resultA, " "+o.nsA) &&
		!slices.Contains(o.pollersB, o.labelA) && o.startedB == 0 && o.tookA > 0 && o.window >= 10*o.tookA &&
		o.errB == nil && strings.HasPrefix(o.resultB, o.labelB+" ") && strings.HasSuffix(o.resultB, " "+o.nsB) &&
		len(o.startedByB) > 0 && !slices.ContainsFunc(o.startedByB, func(id string) bool { return id != o.labelB })
}

func tenantCaseWorkers() tenantWorkers {
	return tenantWorkers{labelA: "worker-a", labelB: "worker-b", nsA: "tenant-a", nsB: "tenant-b",
		resultA: "worker-a ran it in namespace tenant-a", tookA: 100 * time.Millisecond, window: 3 * time.Second,
		resultB: "worker-b ran it in namespace tenant-b", startedByB: []string{"worker-b"}}
}

var tenantWorkerPredicate = predicate.New("OP-07.worker-isolation", "workersStayInNamespace", workersStayInNamespace,
	predicate.Case[tenantWorkers]{Name: "A's worker ran A's run only; B's waited for B's worker", In: tenantCaseWorkers(), Want: true},
	predicate.Case[tenantWorkers]{Name: "A's worker picked up B's task on the same queue name",
		In: func() tenantWorkers {
			o := tenantCaseWorkers()
			o.startedB, o.resultB, o.startedByB = 1, "worker-a ran it in namespace tenant-b", []string{"worker-a"}
			return o
		}(), Want: false},
	predicate.Case[tenantWorkers]{Name: "A's worker polls B's queue",
		In: func() tenantWorkers { o := tenantCaseWorkers(); o.pollersB = []string{"worker-a"}; return o }(), Want: false},
	predicate.Case[tenantWorkers]{Name: "watched too briefly to tell",
		In: func() tenantWorkers { o := tenantCaseWorkers(); o.window = 500 * time.Millisecond; return o }(), Want: false},
)

// tenantThrottle is a noisy and a quiet namespace under one per-namespace
// limit, measured over the same window (OP-07.namespace-rate-limit).
type tenantThrottle struct {
	limit, burst           float64       // the configured per-namespace rate (per second) and burst
	window                 time.Duration // from the noisy tenant's first call to its last answer
	offered, accepted      int           // noisy calls
	exhausted, otherErrors int           // noisy calls refused with ResourceExhausted, or with another error
	serverNoisy            float64       // the server's service_errors_resource_exhausted for the noisy namespace
	serverQuiet            float64       // and for the quiet one
	quietSent, quietOK     int
	quietExhausted         int
}

// throttledAtLimit: the noisy tenant offered more than its limit and was
// refused with ResourceExhausted (the server counting those refusals under
// its namespace), it got no more through than the token bucket allows
// (burst + rate × window, the limiter's definition of
// frontend.namespaceRPS and frontend.namespaceBurstRatio; one token of slack
// for the bucket's rounding), and the quiet tenant, within its own limit,
// had every call answered and none refused.
func throttledAtLimit(o tenantThrottle) bool {
	return o.limit > 0 && o.window > 0 && float64(o.offered) > o.burst+o.limit*o.window.Seconds() &&
		o.exhausted > 0 && o.otherErrors == 0 && o.accepted > 0 && o.accepted+o.exhausted == o.offered &&
		float64(o.accepted) <= o.burst+o.limit*o.window.Seconds()+1 &&
		o.serverNoisy > 0 && o.serverQuiet == 0 &&
		o.quietSent > 0 && o.quietOK == o.quietSent && o.quietExhausted == 0
}

func tenantCaseThrottle() tenantThrottle {
	return tenantThrottle{limit: 20, burst: 20, window: 5 * time.Second, offered: 500, accepted: 118, exhausted: 382,
		serverNoisy: 382, quietSent: 25, quietOK: 25}
}

var tenantThrottlePredicate = predicate.New("OP-07.namespace-rate-limit", "throttledAtLimit", throttledAtLimit,
	predicate.Case[tenantThrottle]{Name: "noisy held at 20/s with 382 refusals; quiet untouched", In: tenantCaseThrottle(), Want: true},
	predicate.Case[tenantThrottle]{Name: "no limit enforced: everything accepted",
		In: func() tenantThrottle {
			o := tenantCaseThrottle()
			o.accepted, o.exhausted, o.serverNoisy = 500, 0, 0
			return o
		}(), Want: false},
	predicate.Case[tenantThrottle]{Name: "one shared limit: the quiet tenant is refused too",
		In: func() tenantThrottle {
			o := tenantCaseThrottle()
			o.quietOK, o.quietExhausted, o.serverQuiet = 15, 10, 10
			return o
		}(), Want: false},
	predicate.Case[tenantThrottle]{Name: "refusals, but far more got through than the limit allows",
		In: func() tenantThrottle {
			o := tenantCaseThrottle()
			o.accepted, o.exhausted = 400, 100
			return o
		}(), Want: false},
)

// tenantNeighbour is the quiet tenant's schedule-to-start before and while
// the noisy tenant held a backlog (OP-07.noisy-neighbour).
type tenantNeighbour struct {
	backlogWanted      int64 // the catalog's 10K
	backlogMin         int64 // the smallest backlog seen from the start to the end of the loaded phase
	baseN, loadedN     int
	minN               int     // samples each phase needs
	ratioLo, ratioHi   float64 // 95% interval of p95(loaded)/p95(baseline)
	maxRatio           float64 // the catalog's 2×
	baseErr, loadedErr error
}

// quietKeepsPace: the noisy backlog held at least the catalog's 10K from
// the start to the end of the loaded phase, both phases had enough samples,
// and the upper bound of the 95% interval of p95(loaded)/p95(baseline) is
// within the catalog's 2×.
func quietKeepsPace(o tenantNeighbour) bool {
	return o.baseErr == nil && o.loadedErr == nil && o.backlogWanted > 0 && o.backlogMin >= o.backlogWanted &&
		o.baseN >= o.minN && o.loadedN >= o.minN && o.minN > 0 && o.maxRatio > 0 && o.ratioHi > 0 && o.ratioHi <= o.maxRatio
}

func tenantCaseNeighbour() tenantNeighbour {
	return tenantNeighbour{backlogWanted: 10000, backlogMin: 10500, baseN: 160, loadedN: 160, minN: 100, ratioLo: 0.9, ratioHi: 1.4, maxRatio: 2}
}

var tenantNeighbourPredicate = predicate.New("OP-07.noisy-neighbour", "quietKeepsPace", quietKeepsPace,
	predicate.Case[tenantNeighbour]{Name: "p95 ratio within [0.9, 1.4] under a 10.5K backlog", In: tenantCaseNeighbour(), Want: true},
	predicate.Case[tenantNeighbour]{Name: "quiet tenant starved: p95 ratio [3, 6]",
		In: func() tenantNeighbour { o := tenantCaseNeighbour(); o.ratioLo, o.ratioHi = 3, 6; return o }(), Want: false},
	predicate.Case[tenantNeighbour]{Name: "ratio likely fine but its interval reaches past 2×",
		In: func() tenantNeighbour { o := tenantCaseNeighbour(); o.ratioLo, o.ratioHi = 1.2, 2.3; return o }(), Want: false},
	predicate.Case[tenantNeighbour]{Name: "the backlog drained before the measurement ended",
		In: func() tenantNeighbour { o := tenantCaseNeighbour(); o.backlogMin = 2000; return o }(), Want: false},
)

// tenantAuth is what the server with the default claim mapper and
// authorizer answered to each caller (OP-07.authorization).
type tenantAuth struct {
	jwksFetches int64 // times the server fetched the JWKS
	ownErr      error // token with tenant-a:write, starting a run on tenant-a
	ownRun      string
	ownResult   string // that run's result, run by a worker holding the same token
	crossErr    error  // the same token, starting a run on tenant-b
	noTokenErr  error  // no token, starting a run on tenant-a
	forgedErr   error  // a token with tenant-a:write signed by a key the JWKS does not hold
	readerErr   error  // a token with tenant-a:read, starting a run on tenant-a
}

// authorisedPerNamespace: the server fetched the keys, the token for
// tenant-a started and completed a run there, and it was refused with
// PermissionDenied on tenant-b; so were a caller without a token, one with
// a forged token and one with read-only rights starting a run.
func authorisedPerNamespace(o tenantAuth) bool {
	return o.jwksFetches > 0 && o.ownErr == nil && o.ownRun != "" && o.ownResult != "" &&
		tenantIsDenied(o.crossErr) && tenantIsDenied(o.noTokenErr) && tenantIsDenied(o.forgedErr) && tenantIsDenied(o.readerErr)
}

func tenantCaseAuth() tenantAuth {
	denied := serviceerror.NewPermissionDenied("Request unauthorized.", "")
	return tenantAuth{jwksFetches: 1, ownRun: "r1", ownResult: "worker-a ran it in namespace tenant-a",
		crossErr: denied, noTokenErr: denied, forgedErr: denied, readerErr: denied}
}

var tenantAuthPredicate = predicate.New("OP-07.authorization", "authorisedPerNamespace", authorisedPerNamespace,
	predicate.Case[tenantAuth]{Name: "allowed on its namespace, denied elsewhere and without rights", In: tenantCaseAuth(), Want: true},
	predicate.Case[tenantAuth]{Name: "no authorizer: the token works on any namespace",
		In: func() tenantAuth { o := tenantCaseAuth(); o.crossErr, o.noTokenErr = nil, nil; return o }(), Want: false},
	predicate.Case[tenantAuth]{Name: "the right token is refused too",
		In: func() tenantAuth {
			o := tenantCaseAuth()
			o.ownErr, o.ownRun, o.ownResult = serviceerror.NewPermissionDenied("Request unauthorized.", ""), "", ""
			return o
		}(), Want: false},
	predicate.Case[tenantAuth]{Name: "refused, but with another error than PermissionDenied",
		In: func() tenantAuth {
			o := tenantCaseAuth()
			o.crossErr = serviceerror.NewNamespaceNotFound("tenant-b")
			return o
		}(), Want: false},
	predicate.Case[tenantAuth]{Name: "a forged signature is accepted",
		In: func() tenantAuth { o := tenantCaseAuth(); o.forgedErr = nil; return o }(), Want: false},
)
