package vr

import "github.com/durabench/durabench/harness/predicate"

func replayPredicates() []predicate.Spec { return nil }
