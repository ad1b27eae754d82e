package pf

import (
	"errors"
	"strings"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of PF-03's checks.

func payloadPredicates() []predicate.Spec {
	return []predicate.Spec{
		payloadLimitFoundPredicate.Spec(), payloadErrorAbovePredicate.Spec(), payloadWarningPredicate.Spec(),
		payloadClaimCheckPredicate.Spec(), payloadCompressionPredicate.Spec(), payloadHistoryLimitPredicate.Spec(),
		payloadOversizedPredicate.Spec(),
	}
}

// The documented defaults PF-03 measures against. payloadDocumentedLimit is
// the server's limit.blobSize.error (go.temporal.io/server v1.32.0,
// common/dynamicconfig/constants.go: 2*1024*1024), the "2 MB" of
// docs.temporal.io/self-hosted-guide/defaults. payloadDocumentedWarn is the
// server's limit.blobSize.warn (512*1024 in the same file) and the SDK's
// PayloadLimitOptions.PayloadSizeWarning default (v1.50.0, "defaults to 512
// KiB"); the docs page and the catalog name 256 KB instead.
const (
	payloadDocumentedLimit = 2 << 20
	payloadDocumentedWarn  = 512 << 10
)

// payloadNamesLimit reports whether an error text names a size limit.
func payloadNamesLimit(text string) bool {
	s := strings.ToLower(text)
	return strings.Contains(s, "size") && strings.Contains(s, "limit")
}

// payloadBisection is one bisection of the largest accepted payload. The
// server measures a payload as the encoded Payloads message (proto size, the
// default converter's envelope included), so the sizes are given both ways.
type payloadBisection struct {
	largest  int   // bytes of data of the largest accepted payload
	wire     int   // its encoded size
	wireNext int   // the encoded size of one data byte more, which was refused
	steps    int   // probes made
	err      error // the limit was not bracketed
}

// payloadLimitFound is the limit found for workflow inputs and activity
// results beside the one the server states (PF-03.limit-found).
type payloadLimitFound struct {
	input, result payloadBisection
	limit         int // the server's stated limit, or payloadDocumentedLimit where it states none
}

// payloadLimitMatches: both bisections bracketed the limit, and each puts
// the stated limit between the largest accepted encoded size and the next
// one, the resolution of a bisection to one byte of data.
func payloadLimitMatches(o payloadLimitFound) bool {
	at := func(b payloadBisection) bool { return b.err == nil && b.wire <= o.limit && o.limit < b.wireNext }
	return o.limit > 0 && at(o.input) && at(o.result)
}

var payloadAtLimit = payloadBisection{largest: 2097118, wire: 2097152, wireNext: 2097153, steps: 24}

var payloadLimitFoundPredicate = predicate.New("PF-03.limit-found", "payloadLimitMatches", payloadLimitMatches,
	predicate.Case[payloadLimitFound]{Name: "both refuse one byte above 2097152 encoded bytes, as stated",
		In: payloadLimitFound{input: payloadAtLimit, result: payloadAtLimit, limit: payloadDocumentedLimit}, Want: true},
	predicate.Case[payloadLimitFound]{Name: "a proxy refuses from 1 MiB: the limit found is not the stated one",
		In: payloadLimitFound{input: payloadBisection{largest: 1048542, wire: 1048576, wireNext: 1048577}, result: payloadAtLimit, limit: payloadDocumentedLimit}, Want: false},
	predicate.Case[payloadLimitFound]{Name: "3 MiB accepted: no limit within the range searched",
		In: payloadLimitFound{input: payloadAtLimit, result: payloadBisection{err: errors.New("3145728 bytes were accepted")}, limit: payloadDocumentedLimit}, Want: false},
)

// payloadRefused is what one byte above the largest accepted payload brought
// (PF-03.error-above-limit).
type payloadRefused struct {
	bracketed  bool   // both bisections found a limit
	inputType  string // the Go type of the client's error starting a workflow with the input
	inputError string // its message
	causeType  string // the activity error's cause as the workflow saw it (ServerError, ApplicationError:<type>)
	cause      string // its message
	history    string // the ActivityTaskFailed failure message in history, "" if none
}

// payloadRefusedNamingLimit: for a workflow input and for an activity result
// just above the limit, the error the caller receives names a size limit,
// and so does the failure history records for the activity.
func payloadRefusedNamingLimit(o payloadRefused) bool {
	return o.bracketed && payloadNamesLimit(o.inputError) && o.causeType != "" && payloadNamesLimit(o.cause) && payloadNamesLimit(o.history)
}

var payloadErrorAbovePredicate = predicate.New("PF-03.error-above-limit", "payloadRefusedNamingLimit", payloadRefusedNamingLimit,
	predicate.Case[payloadRefused]{Name: "InvalidArgument and a server failure, both naming the size limit",
		In: payloadRefused{bracketed: true, inputType: "*serviceerror.InvalidArgument", inputError: "Blob data size exceeds limit.",
			causeType: "ServerError", cause: "Complete result exceeds size limit.", history: "Complete result exceeds size limit."}, Want: true},
	predicate.Case[payloadRefused]{Name: "the oversized result surfaces only as a timeout",
		In: payloadRefused{bracketed: true, inputType: "*serviceerror.InvalidArgument", inputError: "Blob data size exceeds limit.",
			causeType: "TimeoutError", cause: "activity StartToClose timeout"}, Want: false},
	predicate.Case[payloadRefused]{Name: "the connection is reset with no reason",
		In: payloadRefused{bracketed: true, inputType: "*serviceerror.Unavailable", inputError: "connection reset by peer",
			causeType: "ServerError", cause: "Complete result exceeds size limit.", history: "Complete result exceeds size limit."}, Want: false},
)

// payloadWarnProbe is one workflow start of a given encoded input size and
// the size warnings it brought.
type payloadWarnProbe struct {
	wire   int  // encoded bytes of the input
	sdk    bool // the SDK client logged a payload size warning for it
	server bool // the server logged a blob size warning for it (false where its log is not readable)
}

// payloadWarnings is a set of starts around the warning threshold
// (PF-03.warning-threshold).
type payloadWarnings struct {
	threshold int // the documented threshold, above which SDK and server warn
	probes    []payloadWarnProbe
}

// payloadWarnsAboveThreshold: probes on both sides of the threshold, and
// each warned (in the SDK log or the server log) exactly when it was above
// it: the warning is there, and it is about size.
func payloadWarnsAboveThreshold(o payloadWarnings) bool {
	above, below := 0, 0
	for _, p := range o.probes {
		over := p.wire > o.threshold
		if (p.sdk || p.server) != over {
			return false
		}
		if over {
			above++
		} else {
			below++
		}
	}
	return above > 0 && below > 0
}

var payloadWarningPredicate = predicate.New("PF-03.warning-threshold", "payloadWarnsAboveThreshold", payloadWarnsAboveThreshold,
	predicate.Case[payloadWarnings]{Name: "silent at 524288 encoded bytes, warned by both at 524289",
		In: payloadWarnings{threshold: payloadDocumentedWarn, probes: []payloadWarnProbe{{wire: 300034}, {wire: 524288}, {wire: 524289, sdk: true, server: true}}}, Want: true},
	predicate.Case[payloadWarnings]{Name: "only the SDK warns (server log not readable)",
		In: payloadWarnings{threshold: payloadDocumentedWarn, probes: []payloadWarnProbe{{wire: 524288}, {wire: 524289, sdk: true}}}, Want: true},
	predicate.Case[payloadWarnings]{Name: "no warning anywhere",
		In: payloadWarnings{threshold: payloadDocumentedWarn, probes: []payloadWarnProbe{{wire: 300034}, {wire: 524288}, {wire: 524289}}}, Want: false},
	predicate.Case[payloadWarnings]{Name: "a warning below the threshold too: not about size",
		In: payloadWarnings{threshold: payloadDocumentedWarn, probes: []payloadWarnProbe{{wire: 300034, server: true}, {wire: 524288, server: true}, {wire: 524289, server: true}}}, Want: false},
)

// payloadClaimCheckRun is an object carried through a workflow by the
// claim-check codec (PF-03.claim-check).
type payloadClaimCheckRun struct {
	size       int    // bytes of the object
	limit      int    // the payload limit it is above
	sent       string // sha256 of the object the client sent
	returned   string // of the workflow result the client decoded
	digested   string // the activity's digest of what it decoded, read from history
	runErr     error
	refs       int   // claim-check references in history
	maxPayload int   // bytes of the largest payload in history
	threshold  int   // the codec offloads payloads above it
	storeBytes int64 // bytes in the codec's store
}

// payloadCrossings is how many times payloadClaimCheckWorkflow's object
// crosses history: workflow input, activity input and workflow result.
const payloadCrossings = 3

// payloadCarriedByReference: an object above the payload limit went through
// and back intact (the client's result and the activity's digest both match
// what was sent), history holds a reference at each of its crossings and no
// payload above the codec's threshold, and the store holds the object.
func payloadCarriedByReference(o payloadClaimCheckRun) bool {
	return o.runErr == nil && o.size > o.limit && o.sent != "" && o.returned == o.sent && o.digested == o.sent &&
		o.refs >= payloadCrossings && o.maxPayload <= o.threshold && o.storeBytes >= int64(o.size)
}

var payloadClaimCheckPredicate = predicate.New("PF-03.claim-check", "payloadCarriedByReference", payloadCarriedByReference,
	predicate.Case[payloadClaimCheckRun]{Name: "50 MiB intact, 3 references of 137 bytes, one object stored",
		In: payloadClaimCheckRun{size: 50 << 20, limit: payloadDocumentedLimit, sent: "9172e0", returned: "9172e0", digested: "9172e0",
			refs: 3, maxPayload: 137, threshold: 64 << 10, storeBytes: 50<<20 + 31}, Want: true},
	predicate.Case[payloadClaimCheckRun]{Name: "the worker lacks the codec: the activity digests the reference",
		In: payloadClaimCheckRun{size: 50 << 20, limit: payloadDocumentedLimit, sent: "9172e0", returned: "9172e0", digested: "5d41ab",
			refs: 3, maxPayload: 137, threshold: 64 << 10, storeBytes: 50<<20 + 31}, Want: false},
	predicate.Case[payloadClaimCheckRun]{Name: "no offload: the server refuses the start",
		In: payloadClaimCheckRun{size: 50 << 20, limit: payloadDocumentedLimit, sent: "9172e0", runErr: errors.New("Blob data size exceeds limit."),
			threshold: 64 << 10}, Want: false},
)

// payloadCompressionRun is a compressible text above the payload limit sent
// through the zlib codec (PF-03.compression-codec).
type payloadCompressionRun struct {
	rawBytes     int // the input encoded without the codec
	limit        int // the payload limit
	historyBytes int // the input as history stores it
	zlib         int // binary/zlib payloads in history
	workerSum    string
	clientSum    string // sha256 of the text the client sent
	textIntact   bool   // the result the client decoded is the text sent
	runErr       error
}

// payloadCodecPayloads is how many payloads payloadDigestWorkflow puts in
// history: its input and its result.
const payloadCodecPayloads = 2

// payloadCompressedAndDecoded: a text too large for the limit uncompressed
// was stored compressed (smaller, zlib-encoded input and result), the worker
// decoded it (its digest is the client's) and the client decoded the result.
func payloadCompressedAndDecoded(o payloadCompressionRun) bool {
	return o.runErr == nil && o.rawBytes > o.limit && o.historyBytes < o.rawBytes && o.zlib >= payloadCodecPayloads &&
		o.clientSum != "" && o.workerSum == o.clientSum && o.textIntact
}

var payloadCompressionPredicate = predicate.New("PF-03.compression-codec", "payloadCompressedAndDecoded", payloadCompressedAndDecoded,
	predicate.Case[payloadCompressionRun]{Name: "3185189 bytes stored in 155807, decoded on both ends",
		In: payloadCompressionRun{rawBytes: 3185189, limit: payloadDocumentedLimit, historyBytes: 155807, zlib: 2, workerSum: "e32908", clientSum: "e32908", textIntact: true}, Want: true},
	predicate.Case[payloadCompressionRun]{Name: "the codec is not applied: the server refuses the raw text",
		In: payloadCompressionRun{rawBytes: 3185189, limit: payloadDocumentedLimit, clientSum: "e32908", runErr: errors.New("Blob data size exceeds limit.")}, Want: false},
	predicate.Case[payloadCompressionRun]{Name: "the worker saw compressed bytes",
		In: payloadCompressionRun{rawBytes: 3185189, limit: payloadDocumentedLimit, historyBytes: 155807, zlib: 2, workerSum: "77ab01", clientSum: "e32908", textIntact: true}, Want: false},
)

// payloadHistoryBound is one history limit (size in bytes or event count):
// a run that grew until the server stopped it, and a continue-as-new chain
// that did twice its work (PF-03.history-size-limit).
type payloadHistoryBound struct {
	limit      int    // the limit the dedicated server was configured with
	stoppedAt  int    // the stopped run's history, in the limit's unit
	step       int    // what one batch of the workflow's activities adds, in that unit
	terminated bool   // the stopped run ended Terminated
	reason     string // the termination reason
	byUs       bool   // the test terminated it (the limit was not reached in time)
	chainErr   error
	target     int // activities the chain was asked for
	done       int // activities it reported done
	runs       int // runs it reported
	runsFound  int // runs found by following the chain in history
	largest    int // the largest run of the chain, in the limit's unit
}

// payloadHistoryLimited: for every limit, the server itself terminated the
// unbounded run, naming the limit, within one batch of activities of it; and
// the chain did its work over several runs, each under the limit. The
// tolerance comes from where server v1.32.0 checks (history/workflow
// context.go, before each update): the size as persisted so far and the
// event count as of the pending update, so a run is terminated on the first
// update that finds it past the limit. No more than one update, which is at
// most one batch, lies between the stopped run and the limit (observed: the
// size limit overshot by 16-17 KB, the count limit stopped between 287 and
// 302 events).
func payloadHistoryLimited(bounds []payloadHistoryBound) bool {
	for _, b := range bounds {
		stopped := b.terminated && !b.byUs && strings.Contains(b.reason, "exceeds limit") && b.step > 0 &&
			b.stoppedAt >= b.limit-b.step && b.stoppedAt <= b.limit+b.step
		chained := b.chainErr == nil && b.target > 0 && b.done == b.target && b.runs > 1 && b.runsFound == b.runs && b.largest <= b.limit
		if !stopped || !chained {
			return false
		}
	}
	return len(bounds) > 0
}

var (
	payloadSizeBound = payloadHistoryBound{limit: 1 << 20, stoppedAt: 1065095, step: 266273, terminated: true, reason: "Workflow history size exceeds limit.",
		target: 64, done: 64, runs: 4, runsFound: 4, largest: 533562}
	payloadCountBound = payloadHistoryBound{limit: 300, stoppedAt: 287, step: 95, terminated: true, reason: "Workflow history count exceeds limit.",
		target: 120, done: 120, runs: 3, runsFound: 3, largest: 191}
)

var payloadHistoryLimitPredicate = predicate.New("PF-03.history-size-limit", "payloadHistoryLimited", payloadHistoryLimited,
	predicate.Case[[]payloadHistoryBound]{Name: "size stopped at 1065095 of 1048576, count at 287 of 300; chains of 4 and 3 runs",
		In: []payloadHistoryBound{payloadSizeBound, payloadCountBound}, Want: true},
	predicate.Case[[]payloadHistoryBound]{Name: "no limit: the test had to terminate the run",
		In: []payloadHistoryBound{{limit: 1 << 20, stoppedAt: 9 << 20, step: 266273, terminated: true, reason: "history limit not reached in time", byUs: true,
			target: 64, done: 64, runs: 1, runsFound: 1, largest: 2 << 20}, payloadCountBound}, Want: false},
	predicate.Case[[]payloadHistoryBound]{Name: "stopped far below the configured limit: some other setting acted",
		In: []payloadHistoryBound{payloadSizeBound, {limit: 300, stoppedAt: 100, step: 95, terminated: true, reason: "Workflow history count exceeds limit.",
			target: 120, done: 120, runs: 3, runsFound: 3, largest: 191}}, Want: false},
	predicate.Case[[]payloadHistoryBound]{Name: "continue-as-new never happened",
		In: []payloadHistoryBound{payloadSizeBound, {limit: 300, stoppedAt: 287, step: 95, terminated: true, reason: "Workflow history count exceeds limit.",
			target: 120, done: 60, runs: 1, runsFound: 1, largest: 287, chainErr: errors.New("terminated")}}, Want: false},
)

// payloadOversizedRun is a workflow whose activity returned more than the
// limit (PF-03.oversized-result-recoverable).
type payloadOversizedRun struct {
	waitErr  error  // the workflow did not return within the deadline
	fallback bool   // it caught the activity's failure and took its fallback
	cause    string // the failure's message as the workflow saw it
	wftFails int    // failed workflow tasks in its history
}

// payloadOversizedHandled: in every variant the workflow returned, having
// caught an activity failure that names the size limit, with no failed
// workflow task on the way.
func payloadOversizedHandled(runs []payloadOversizedRun) bool {
	for _, r := range runs {
		if r.waitErr != nil || !r.fallback || !payloadNamesLimit(r.cause) || r.wftFails != 0 {
			return false
		}
	}
	return len(runs) > 0
}

var payloadOversizedPredicate = predicate.New("PF-03.oversized-result-recoverable", "payloadOversizedHandled", payloadOversizedHandled,
	predicate.Case[[]payloadOversizedRun]{Name: "the SDK's and the server's check both fail the activity",
		In: []payloadOversizedRun{{fallback: true, cause: "[TMPRL1103] Attempted to upload payloads with size that exceeded the error limit."},
			{fallback: true, cause: "Complete result exceeds size limit."}}, Want: true},
	predicate.Case[[]payloadOversizedRun]{Name: "the workflow task is wedged: failed tasks, no return",
		In: []payloadOversizedRun{{fallback: true, cause: "[TMPRL1103] Attempted to upload payloads with size that exceeded the error limit."},
			{waitErr: errors.New("context deadline exceeded"), wftFails: 5}}, Want: false},
	predicate.Case[[]payloadOversizedRun]{Name: "the failure reached the workflow without naming the size",
		In: []payloadOversizedRun{{fallback: true, cause: "activity StartToClose timeout"}}, Want: false},
)
