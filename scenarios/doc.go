// Package scenarios holds one Go test package per category (scenarios/ex,
// scenarios/rt, ...), each running real workflows against a real server and
// recording evidence. This package itself only checks, in rules_test.go,
// that the scenario packages follow the rules of evidence: every check that
// is under the rules is decided by a named predicate whose table has a case
// for which it returns false.
package scenarios
