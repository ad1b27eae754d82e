package vr

import (
	"slices"

	"github.com/durabench/durabench/harness/predicate"
)

// Predicates returns every predicate the package defines, with its table.
// Each check of VR-01..VR-04 is decided by one of them (scenarios/rules_test.go).
func Predicates() []predicate.Spec {
	return slices.Concat(replayPredicates(), deployPredicates(), schemaPredicates())
}
