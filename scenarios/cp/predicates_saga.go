package cp

import "github.com/durabench/durabench/harness/predicate"

func sagaPredicates() []predicate.Spec { return nil }
