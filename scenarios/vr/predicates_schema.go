package vr

import "github.com/durabench/durabench/harness/predicate"

func schemaPredicates() []predicate.Spec { return nil }
