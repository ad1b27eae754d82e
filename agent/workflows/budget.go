package workflows

import (
	"fmt"

	"github.com/durabench/durabench/agent/llm"
)

// Budget is a run's cost and token allowance. It lives in the workflow's
// state, so it is durable and per run: a worker crash replays the history
// and rebuilds it exactly. Every call reserves its worst case before it is
// made (an LLM call, the worst case of each attempt Temporal may make); when
// it returns, the reservation is replaced by what it really used. A
// reservation that would go over is refused, so a run never spends more than
// its budget.
type Budget struct {
	MaxUSD         float64 `json:"max_usd"`
	MaxTokens      int64   `json:"max_tokens"`
	SpentUSD       float64 `json:"spent_usd"`
	UsedTokens     int64   `json:"used_tokens"`
	ReservedUSD    float64 `json:"reserved_usd"`
	ReservedTokens int64   `json:"reserved_tokens"`
}

// BudgetExceededError is a call refused because its worst case does not fit.
type BudgetExceededError struct {
	Call            string
	NeedUSD         float64
	RemainingUSD    float64
	NeedTokens      int64
	RemainingTokens int64
}

func (e *BudgetExceededError) Error() string {
	return fmt.Sprintf("budget exceeded before %s: needs up to $%.6f and %d tokens, $%.6f and %d tokens remain",
		e.Call, e.NeedUSD, e.NeedTokens, e.RemainingUSD, e.RemainingTokens)
}

// Reservation is what Reserve set aside for one call.
type Reservation struct {
	USD    float64
	Tokens int64
}

// remaining is what is neither spent nor reserved.
func (b *Budget) remaining() (float64, int64) {
	return b.MaxUSD - b.SpentUSD - b.ReservedUSD, b.MaxTokens - b.UsedTokens - b.ReservedTokens
}

// Reserve sets aside usd and tokens for call, or refuses.
func (b *Budget) Reserve(call string, usd float64, tokens int64) (Reservation, error) {
	remUSD, remTok := b.remaining()
	if usd > remUSD || tokens > remTok {
		return Reservation{}, &BudgetExceededError{Call: call, NeedUSD: usd, RemainingUSD: remUSD, NeedTokens: tokens, RemainingTokens: remTok}
	}
	b.ReservedUSD += usd
	b.ReservedTokens += tokens
	return Reservation{USD: usd, Tokens: tokens}, nil
}

// ReserveAttempts sets aside the worst case of every attempt of a call
// that Temporal may retry, each attempt costing up to per: as many attempts
// as fit in what remains, up to most (at least one). It returns how many it
// reserved, which the call's retry policy must not exceed, or refuses when
// not even one fits.
func (b *Budget) ReserveAttempts(call string, per Reservation, most int32) (int32, Reservation, error) {
	remUSD, remTok := b.remaining()
	n := max(most, 1)
	for n > 1 && (float64(n)*per.USD > remUSD || int64(n)*per.Tokens > remTok) {
		n--
	}
	res, err := b.Reserve(call, float64(n)*per.USD, int64(n)*per.Tokens)
	return n, res, err
}

// Charge is the usage an attempt of a call bounded by bound is charged:
// what it reported, capped at the bound (a provider that reports more is
// charged the bound, which it cannot exceed in truth); nothing when the
// provider refused it; and the bound when it reported no usage (it answered
// malformed, or did not answer in time, or its worker was lost), since a
// provider bills such an attempt without telling how much.
func (a Attempt) Charge(bound llm.Bound) llm.Usage {
	switch {
	case a.Usage != nil:
		return llm.Usage{PromptTokens: min(a.Usage.PromptTokens, bound.PromptTokens),
			CompletionTokens: min(a.Usage.CompletionTokens, bound.CompletionTokens)}
	case a.Refused:
		return llm.Usage{}
	default:
		return llm.Usage{PromptTokens: bound.PromptTokens, CompletionTokens: bound.CompletionTokens}
	}
}

// Settle replaces reservation r by what the call used (zero for a call that
// failed before the provider billed it).
func (b *Budget) Settle(r Reservation, usd float64, tokens int64) {
	b.ReservedUSD -= r.USD
	b.ReservedTokens -= r.Tokens
	b.SpentUSD += usd
	b.UsedTokens += tokens
}
