package pf

import (
	"testing"

	"github.com/durabench/durabench/harness/predicate"
)

// TestPayloadPredicates runs PF-03's predicate tables: each decides its
// cases as written and has a case for which it returns false.
func TestPayloadPredicates(t *testing.T) {
	specs := payloadPredicates()
	if err := predicate.Verify(specs); err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		t.Logf("%s: %s, %d cases", s.Check, s.Name, len(s.Run()))
	}
}
