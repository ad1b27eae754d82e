package op

import (
	"slices"

	"github.com/durabench/durabench/harness/predicate"
)

// Predicates returns every predicate the package defines, with its table.
// Each check of OP-01..OP-07 is decided by one of them (scenarios/rules_test.go).
func Predicates() []predicate.Spec {
	return slices.Concat(deployPredicates(), apiPredicates(), backendPredicates(), scalePredicates(),
		retentionPredicates(), haPredicates(), tenantPredicates())
}
