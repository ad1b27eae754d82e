package vr

import "github.com/durabench/durabench/harness/predicate"

func deployPredicates() []predicate.Spec { return nil }
