package vr

import (
	"slices"
	"strings"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of VR-04 (schema evolution), each a named predicate
// over what TestVR04 observed on the server and in replay.

func schemaPredicates() []predicate.Spec {
	return []predicate.Spec{
		fieldAddedPredicate.Spec(), fieldRemovedPredicate.Spec(), fieldRenamedPredicate.Spec(),
		customConverterPredicate.Spec(), incompatiblePredicate.Spec(), upcastPredicate.Spec(), codecPredicate.Spec(),
	}
}

// decodedOrder is one decoding of the committed v1 order payload into
// schemaOrder by the SDK's data converter.
type decodedOrder struct {
	where string // "workflow input" or "activity input"
	err   string // the decoding's error, "" if none
	got   schemaOrder
	keys  []string // JSON keys of the value as v2 wrote it back (the run's result in history)
}

// fieldObs is what VR-04's field checks observed.
type fieldObs struct {
	recorded schemaOrderV1  // the committed payload's values
	decoded  []decodedOrder // by the workflow and by the activity
	replay   schemaReplay   // the committed v1 history replayed against v2
}

// schemaEveryDecoding: at least one decoding was observed and each satisfies ok.
func schemaEveryDecoding(o fieldObs, ok func(decodedOrder) bool) bool {
	return len(o.decoded) > 0 && !slices.ContainsFunc(o.decoded, func(d decodedOrder) bool { return !ok(d) })
}

// schemaKeptFields: the decoding succeeded and the fields both versions have hold
// the recorded values.
func schemaKeptFields(o fieldObs, d decodedOrder) bool {
	return d.err == "" && d.got.ID == o.recorded.ID && d.got.Amount == o.recorded.Amount
}

// fieldAddedZero: every decoding of a payload written before Currency existed
// succeeded, with the recorded values and Currency at its zero value.
func fieldAddedZero(o fieldObs) bool {
	return schemaEveryDecoding(o, func(d decodedOrder) bool { return schemaKeptFields(o, d) && d.got.Currency == "" })
}

// fieldRemovedIgnored: every decoding of a payload that still carries the
// removed coupon succeeded, and the coupon is gone from what v2 writes back.
func fieldRemovedIgnored(o fieldObs) bool {
	return schemaEveryDecoding(o, func(d decodedOrder) bool {
		return schemaKeptFields(o, d) && len(d.keys) > 0 && !slices.Contains(d.keys, "coupon")
	})
}

// fieldRenamedMapped: every decoding put v1's customer into CustomerName, and
// the v1 history replays against v2 to the receipt it recorded.
func fieldRenamedMapped(o fieldObs) bool {
	return o.recorded.Customer != "" &&
		schemaEveryDecoding(o, func(d decodedOrder) bool { return d.err == "" && d.got.CustomerName == o.recorded.Customer }) &&
		o.replay.Err == "" && o.replay.Same
}

// schemaV1Order is the committed v1 order payload's content.
var schemaV1Order = schemaOrderV1{ID: "o-1001", Customer: "Ada Lovelace", Amount: 1250, Coupon: "SPRING10"}

// schemaV1Receipt is the receipt the v1 history recorded.
var schemaV1Receipt = schemaReceipt{OrderID: "o-1001", Customer: "Ada Lovelace", Charged: 1250}

// schemaOrderAsV2 is the v1 order as v2 should decode it.
var schemaOrderAsV2 = schemaOrder{ID: "o-1001", CustomerName: "Ada Lovelace", Amount: 1250}

var schemaV2Keys = []string{"amount", "currency", "customer_name", "id"}

func schemaBothPaths(d func(where string) decodedOrder) []decodedOrder {
	return []decodedOrder{d("workflow input"), d("activity input")}
}

var schemaGoodDecoding = schemaBothPaths(func(w string) decodedOrder { return decodedOrder{where: w, got: schemaOrderAsV2, keys: schemaV2Keys} })

var schemaGoodReplay = schemaReplay{Result: schemaV1Receipt, Recorded: schemaV1Receipt, Same: true}

var fieldAddedPredicate = predicate.New("VR-04.field-added", "fieldAddedZero", fieldAddedZero,
	predicate.Case[fieldObs]{Name: "both decodings keep the recorded values, currency empty",
		In: fieldObs{recorded: schemaV1Order, decoded: schemaGoodDecoding}, Want: true},
	predicate.Case[fieldObs]{Name: "the added field is filled with garbage by the activity's decoding",
		In: fieldObs{recorded: schemaV1Order, decoded: []decodedOrder{schemaGoodDecoding[0],
			{where: "activity input", got: schemaOrder{ID: "o-1001", CustomerName: "Ada Lovelace", Amount: 1250, Currency: "SPRING10"}, keys: schemaV2Keys}}}, Want: false},
	predicate.Case[fieldObs]{Name: "a strict decoder refuses the payload",
		In: fieldObs{recorded: schemaV1Order, decoded: schemaBothPaths(func(w string) decodedOrder {
			return decodedOrder{where: w, err: `payload item 0: unable to decode: missing required field "currency"`}
		})}, Want: false},
	predicate.Case[fieldObs]{Name: "nothing was decoded",
		In: fieldObs{recorded: schemaV1Order}, Want: false},
)

var fieldRemovedPredicate = predicate.New("VR-04.field-removed", "fieldRemovedIgnored", fieldRemovedIgnored,
	predicate.Case[fieldObs]{Name: "both decodings ignore the coupon",
		In: fieldObs{recorded: schemaV1Order, decoded: schemaGoodDecoding}, Want: true},
	predicate.Case[fieldObs]{Name: "a decoder that disallows unknown fields",
		In: fieldObs{recorded: schemaV1Order, decoded: schemaBothPaths(func(w string) decodedOrder {
			return decodedOrder{where: w, err: `payload item 0: unable to decode: json: unknown field "coupon"`}
		})}, Want: false},
	predicate.Case[fieldObs]{Name: "the removed field is carried through and written back",
		In: fieldObs{recorded: schemaV1Order, decoded: schemaBothPaths(func(w string) decodedOrder {
			return decodedOrder{where: w, got: schemaOrderAsV2, keys: append([]string{"coupon"}, schemaV2Keys...)}
		})}, Want: false},
	predicate.Case[fieldObs]{Name: "decoded, but the amount was lost",
		In: fieldObs{recorded: schemaV1Order, decoded: schemaBothPaths(func(w string) decodedOrder {
			return decodedOrder{where: w, got: schemaOrder{ID: "o-1001", CustomerName: "Ada Lovelace"}, keys: schemaV2Keys}
		})}, Want: false},
)

var fieldRenamedPredicate = predicate.New("VR-04.field-renamed", "fieldRenamedMapped", fieldRenamedMapped,
	predicate.Case[fieldObs]{Name: "customer mapped in both decodings, the v1 history replays to its receipt",
		In: fieldObs{recorded: schemaV1Order, decoded: schemaGoodDecoding, replay: schemaGoodReplay}, Want: true},
	predicate.Case[fieldObs]{Name: "no mapping: customer_name empty, the replay refuses the order",
		In: fieldObs{recorded: schemaV1Order, decoded: schemaBothPaths(func(w string) decodedOrder {
			return decodedOrder{where: w, got: schemaOrder{ID: "o-1001", Amount: 1250}, keys: schemaV2Keys}
		}), replay: schemaReplay{Err: "[TMPRL1100] nondeterministic workflow: history event is ActivityTaskScheduled: (ActivityId:5, ActivityType:(Name:SchemaCharge)...), replay command is CompleteWorkflowExecution"}}, Want: false},
	predicate.Case[fieldObs]{Name: "decodings mapped, but the replay returns another receipt",
		In: fieldObs{recorded: schemaV1Order, decoded: schemaGoodDecoding,
			replay: schemaReplay{Result: schemaReceipt{OrderID: "o-1001", Charged: 1250}, Recorded: schemaV1Receipt}}, Want: false},
)

// payloadSeen is one payload of a run's history as the server returned it.
type payloadSeen struct {
	event    string // the event and field, e.g. "ActivityTaskScheduled.input"
	encoding string // its metadata "encoding"
	envType  string // the Go type its envelope names, "" if it is no envelope
}

// schemaPayloadEvents are the payloads that carry a workflow's and an
// activity's input and result.
var schemaPayloadEvents = []string{
	"WorkflowExecutionStarted.input", "ActivityTaskScheduled.input",
	"ActivityTaskCompleted.result", "WorkflowExecutionCompleted.result",
}

// schemaCoversPayloads: a payload of each of schemaPayloadEvents was seen.
func schemaCoversPayloads(ps []payloadSeen) bool {
	return !slices.ContainsFunc(schemaPayloadEvents, func(e string) bool {
		return !slices.ContainsFunc(ps, func(p payloadSeen) bool { return p.event == e })
	})
}

// envelopeObs is a run of the order workflow through the envelope converter.
type envelopeObs struct {
	payloads  []payloadSeen
	err       string
	want, got schemaReceipt
}

// envelopeEndToEnd: the run returned the expected receipt, and the workflow's
// and the activity's input and result are all stored as envelopes naming a
// type.
func envelopeEndToEnd(o envelopeObs) bool {
	return o.err == "" && o.got == o.want && schemaCoversPayloads(o.payloads) &&
		!slices.ContainsFunc(o.payloads, func(p payloadSeen) bool { return p.encoding != envelopeEncoding || p.envType == "" })
}

var schemaGrace = schemaReceipt{OrderID: "o-2001", Customer: "Grace Hopper", Charged: 4200}

func schemaSeenAll(enc, typ string) []payloadSeen {
	out := make([]payloadSeen, len(schemaPayloadEvents))
	for i, e := range schemaPayloadEvents {
		out[i] = payloadSeen{event: e, encoding: enc, envType: typ}
	}
	return out
}

var customConverterPredicate = predicate.New("VR-04.custom-converter", "envelopeEndToEnd", envelopeEndToEnd,
	predicate.Case[envelopeObs]{Name: "all four payloads are envelopes, the receipt as expected",
		In: envelopeObs{payloads: schemaSeenAll(envelopeEncoding, "vr.schemaOrder"), want: schemaGrace, got: schemaGrace}, Want: true},
	predicate.Case[envelopeObs]{Name: "the converter only reached the client: activity payloads are json/plain",
		In: envelopeObs{payloads: []payloadSeen{
			{event: "WorkflowExecutionStarted.input", encoding: envelopeEncoding, envType: "vr.schemaOrder"},
			{event: "ActivityTaskScheduled.input", encoding: "json/plain"},
			{event: "ActivityTaskCompleted.result", encoding: "json/plain"},
			{event: "WorkflowExecutionCompleted.result", encoding: "json/plain"},
		}, want: schemaGrace, got: schemaGrace}, Want: false},
	predicate.Case[envelopeObs]{Name: "the worker cannot read the envelope",
		In: envelopeObs{payloads: schemaSeenAll(envelopeEncoding, "vr.schemaOrder")[:1], want: schemaGrace,
			err: "workflow execution error: unable to decode the workflow function input payload with error: payload item 0: encoding json/durabench-envelope: payload encoding is not supported"}, Want: false},
)

// loudPath is the fate of a run given a v1 invoice, whose total is a string,
// where v2 expects an int64, decoded by the plain JSON converter.
type loudPath struct {
	where     string // "workflow input" or "activity input"
	failure   string // the failure the server recorded, "" if none
	completed bool   // the run completed with a value
	total     int64  // the total it delivered, if it completed
}

// incompatibleObs is both runs, and what their errors must name.
type incompatibleObs struct {
	field, goType string // e.g. "schemaInvoice.total", "int64"
	paths         []loudPath
}

// failsLoudly: in each run the decoding failed with a recorded failure that
// names the field and the type, and no value was delivered.
func failsLoudly(o incompatibleObs) bool {
	return len(o.paths) > 0 && o.field != "" && o.goType != "" && !slices.ContainsFunc(o.paths, func(p loudPath) bool {
		return p.failure == "" || p.completed || !strings.Contains(p.failure, o.field) || !strings.Contains(p.failure, o.goType)
	})
}

const schemaJSONTypeError = "payload item 0: unable to decode: json: cannot unmarshal string into Go struct field schemaInvoice.total of type int64"

var incompatiblePredicate = predicate.New("VR-04.incompatible-fails-loudly", "failsLoudly", failsLoudly,
	predicate.Case[incompatibleObs]{Name: "both decodings fail naming total and int64",
		In: incompatibleObs{field: "schemaInvoice.total", goType: "int64", paths: []loudPath{
			{where: "workflow input", failure: "unable to decode the workflow function input payload with error: " + schemaJSONTypeError},
			{where: "activity input", failure: "unable to decode the activity function input payload with error: " + schemaJSONTypeError},
		}}, Want: true},
	predicate.Case[incompatibleObs]{Name: "a lenient decoder: no error, total silently zero",
		In: incompatibleObs{field: "schemaInvoice.total", goType: "int64", paths: []loudPath{
			{where: "workflow input", completed: true}, {where: "activity input", completed: true},
		}}, Want: false},
	predicate.Case[incompatibleObs]{Name: "fails, but the error names neither field nor type",
		In: incompatibleObs{field: "schemaInvoice.total", goType: "int64", paths: []loudPath{
			{where: "workflow input", failure: "unable to decode the workflow function input payload"},
		}}, Want: false},
)

// upcastObs is VR-04.upcast-converter: a live run given the committed v1
// invoice, and the committed v1 history replayed, both through the upcasting
// converter into schemaInvoice.
type upcastObs struct {
	want         schemaInvoice
	inputVersion string // the schema version in the live run's input metadata ("": a v1 payload)
	liveErr      string
	live         schemaInvoice
	replay       schemaReplay
}

// upcastBoth: the live run given a v1 payload and the replay of the v1
// history both produced the expected v2 invoice.
func upcastBoth(o upcastObs) bool {
	return o.inputVersion == "" && o.liveErr == "" && o.live == o.want &&
		o.replay.Err == "" && o.replay.Same && o.replay.Result == o.want
}

var schemaApprovedV2 = schemaInvoice{Number: "inv-7", Customer: "ADA LOVELACE", Total: 1250}

var upcastPredicate = predicate.New("VR-04.upcast-converter", "upcastBoth", upcastBoth,
	predicate.Case[upcastObs]{Name: "live and replay both give 1250 cents",
		In: upcastObs{want: schemaApprovedV2, live: schemaApprovedV2, replay: schemaReplay{Result: schemaApprovedV2, Recorded: schemaApprovedV2, Same: true}}, Want: true},
	predicate.Case[upcastObs]{Name: "without the upcaster: the live run fails, the replay cannot decode",
		In: upcastObs{want: schemaApprovedV2, liveErr: "workflow execution error: unable to decode the workflow function input payload with error: " + schemaJSONTypeError,
			replay: schemaReplay{Err: "unable to decode the workflow function input payload with error: " + schemaJSONTypeError}}, Want: false},
	predicate.Case[upcastObs]{Name: "the upcast drops the decimals",
		In: upcastObs{want: schemaApprovedV2, live: schemaInvoice{Number: "inv-7", Customer: "ADA LOVELACE", Total: 1200},
			replay: schemaReplay{Result: schemaApprovedV2, Recorded: schemaApprovedV2, Same: true}}, Want: false},
	predicate.Case[upcastObs]{Name: "the live input was already v2: no upcast exercised",
		In: upcastObs{want: schemaApprovedV2, inputVersion: "2", live: schemaApprovedV2, replay: schemaReplay{Result: schemaApprovedV2, Recorded: schemaApprovedV2, Same: true}}, Want: false},
)

// codecObs is VR-04.codec-change: the history committed before the codec
// was added, replayed with it, and a run started before the codec and
// finished by a worker with it.
type codecObs struct {
	before     schemaReplay
	payloads   []payloadSeen // of the live run
	liveErr    string
	want, live schemaReceipt
	liveReplay schemaReplay // the live run's history replayed with the codec
}

// codecReadsOld: the old history replays to its result; in the live run the
// input written before the codec stayed json/plain and was read, while every
// payload written after it is zlib-encoded; the mixed history replays too.
func codecReadsOld(o codecObs) bool {
	payloadsOK := schemaCoversPayloads(o.payloads) && !slices.ContainsFunc(o.payloads, func(p payloadSeen) bool {
		if p.event == "WorkflowExecutionStarted.input" {
			return p.encoding != "json/plain"
		}
		return p.encoding != zlibEncoding
	})
	return o.before.Err == "" && o.before.Same && o.liveErr == "" && o.live == o.want && payloadsOK &&
		o.liveReplay.Err == "" && o.liveReplay.Same
}

var schemaCodecPayloads = []payloadSeen{
	{event: "WorkflowExecutionStarted.input", encoding: "json/plain"},
	{event: "ActivityTaskScheduled.input", encoding: zlibEncoding},
	{event: "ActivityTaskCompleted.result", encoding: zlibEncoding},
	{event: "WorkflowExecutionCompleted.result", encoding: zlibEncoding},
}

var codecPredicate = predicate.New("VR-04.codec-change", "codecReadsOld", codecReadsOld,
	predicate.Case[codecObs]{Name: "old history replays, new payloads zlib",
		In: codecObs{before: schemaGoodReplay, payloads: schemaCodecPayloads, want: schemaGrace, live: schemaGrace, liveReplay: schemaReplay{Result: schemaGrace, Recorded: schemaGrace, Same: true}}, Want: true},
	predicate.Case[codecObs]{Name: "a codec that decodes every payload breaks the old history",
		In: codecObs{before: schemaReplay{Err: "unable to decode the workflow function input payload with error: zlib: invalid header"},
			payloads: schemaCodecPayloads, liveErr: "zlib: invalid header", want: schemaGrace}, Want: false},
	predicate.Case[codecObs]{Name: "the codec was not applied: new payloads stay json/plain",
		In: codecObs{before: schemaGoodReplay, payloads: schemaSeenAll("json/plain", ""), want: schemaGrace, live: schemaGrace, liveReplay: schemaReplay{Result: schemaGrace, Recorded: schemaGrace, Same: true}}, Want: false},
)
