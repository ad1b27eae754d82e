package cp

import "github.com/durabench/durabench/harness/predicate"

func deadLetterPredicates() []predicate.Spec { return nil }
