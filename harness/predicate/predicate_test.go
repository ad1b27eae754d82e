package predicate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func positive(n int) bool { return n > 0 }

func TestVerify(t *testing.T) {
	good := New("EX-01.a", "positive", positive, Case[int]{"one", 1, true}, Case[int]{"zero", 0, false})
	tests := []struct {
		name  string
		specs []Spec
		want  []string // substrings of the error; none: no error
	}{
		{"a table with both verdicts", []Spec{good.Spec()}, nil},
		{"no false case", []Spec{New("EX-01.a", "positive", positive, Case[int]{"one", 1, true}).Spec()},
			[]string{"EX-01.a", "positive", "no case for which it returns false"}},
		{"no true case", []Spec{New("EX-01.a", "positive", positive, Case[int]{"zero", 0, false}).Spec()},
			[]string{"no case for which it returns true"}},
		{"a wrong want", []Spec{New("EX-01.a", "positive", positive, Case[int]{"one", 1, true}, Case[int]{"two", 2, false}).Spec()},
			[]string{"positive(two) = true, want false", "no case for which it returns false"}},
		{"always true", []Spec{New("EX-01.a", "always", func(int) bool { return true }, Case[int]{"one", 1, true}, Case[int]{"zero", 0, false}).Spec()},
			[]string{"always(zero) = true, want false"}},
		{"two predicates for one check", []Spec{good.Spec(), good.Spec()}, []string{"EX-01.a: decided by both positive and positive"}},
		{"no check", []Spec{New("", "positive", positive).Spec()}, []string{"check, name and table are required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.specs)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestHolds(t *testing.T) {
	p := New("EX-01.a", "positive", positive)
	assert.True(t, p.Holds(3))
	assert.False(t, p.Holds(-3))
	assert.Equal(t, "EX-01.a", p.Check())
	assert.Equal(t, "positive", p.Name())
}
