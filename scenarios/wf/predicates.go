package wf

import (
	"slices"

	"github.com/durabench/durabench/harness/predicate"
)

// Predicates returns every predicate the package defines, with its table.
// Each check of WF-01..WF-06 is decided by one of them
// (scenarios/rules_test.go).
func Predicates() []predicate.Spec {
	return slices.Concat(stepPredicates(), childPredicates(), fanOutPredicates(), loopPredicates(),
		timerPredicates(), queuePredicates())
}
