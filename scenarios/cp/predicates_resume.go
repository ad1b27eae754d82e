package cp

import "github.com/durabench/durabench/harness/predicate"

func resumePredicates() []predicate.Spec { return nil }
