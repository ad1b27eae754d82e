// Package predicate ties a catalog check to the named predicate that decides
// its outcome, and to the table of cases that shows the predicate can return
// false. A negative control runs the same predicate on a deliberately broken
// setup, so a predicate that always passes is caught twice: by its table (no
// case returns false) and by its control (the control passes).
package predicate

import (
	"errors"
	"fmt"
	"slices"
)

// Case is one row of a predicate's table: an input and the verdict it must
// get.
type Case[In any] struct {
	Name string
	In   In
	Want bool
}

// P is a named predicate over observations of type In.
type P[In any] struct {
	check string
	name  string
	fn    func(In) bool
	cases []Case[In]
}

// New defines the predicate that decides catalog check id: name is the Go
// name of fn, shown in the evidence; cases is its table, which must hold an
// input for which fn returns false.
func New[In any](check, name string, fn func(In) bool, cases ...Case[In]) *P[In] {
	return &P[In]{check: check, name: name, fn: fn, cases: cases}
}

// Holds applies the predicate.
func (p *P[In]) Holds(in In) bool { return p.fn(in) }

// Check is the catalog check the predicate decides.
func (p *P[In]) Check() string { return p.check }

// Name is the predicate's name as recorded in the evidence.
func (p *P[In]) Name() string { return p.name }

// Spec is the predicate without its input type, for tests that walk them all.
func (p *P[In]) Spec() Spec {
	return Spec{Check: p.check, Name: p.name, run: func() []Outcome {
		out := make([]Outcome, len(p.cases))
		for i, c := range p.cases {
			out[i] = Outcome{Case: c.Name, Want: c.Want, Got: p.fn(c.In)}
		}
		return out
	}}
}

// Spec is a predicate and its table, typeless.
type Spec struct {
	Check string
	Name  string
	run   func() []Outcome
}

// Outcome is one table row evaluated.
type Outcome struct {
	Case      string
	Want, Got bool
}

// Run evaluates the table.
func (s Spec) Run() []Outcome { return s.run() }

// Verify evaluates every table and returns what is wrong: a case whose
// verdict differs from its Want, a predicate without a case that returns
// false or without one that returns true, a predicate without a check or a
// name, and two predicates for one check.
func Verify(specs []Spec) error {
	var errs []error
	seen := map[string]string{}
	for _, s := range specs {
		if s.Check == "" || s.Name == "" || s.run == nil {
			errs = append(errs, fmt.Errorf("predicate %q for check %q: check, name and table are required", s.Name, s.Check))
			continue
		}
		if other, ok := seen[s.Check]; ok {
			errs = append(errs, fmt.Errorf("check %s: decided by both %s and %s", s.Check, other, s.Name))
		}
		seen[s.Check] = s.Name
		outs := s.Run()
		for _, o := range outs {
			if o.Got != o.Want {
				errs = append(errs, fmt.Errorf("check %s: %s(%s) = %t, want %t", s.Check, s.Name, o.Case, o.Got, o.Want))
			}
		}
		if !slices.ContainsFunc(outs, func(o Outcome) bool { return !o.Want && !o.Got }) {
			errs = append(errs, fmt.Errorf("check %s: predicate %s has no case for which it returns false: a check that cannot fail", s.Check, s.Name))
		}
		if !slices.ContainsFunc(outs, func(o Outcome) bool { return o.Want && o.Got }) {
			errs = append(errs, fmt.Errorf("check %s: predicate %s has no case for which it returns true", s.Check, s.Name))
		}
	}
	return errors.Join(errs...)
}
