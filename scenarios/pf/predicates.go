package pf

import (
	"slices"

	"github.com/durabench/durabench/harness/predicate"
)

// Predicates returns every predicate the package defines, with its table.
// Each check of PF-01..PF-03 is decided by one of them
// (scenarios/rules_test.go).
func Predicates() []predicate.Spec {
	return slices.Concat(latencyPredicates(), fanOutPredicates(), payloadPredicates())
}
