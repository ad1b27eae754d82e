package cp

import "github.com/durabench/durabench/harness/predicate"

func interventionPredicates() []predicate.Spec { return nil }
