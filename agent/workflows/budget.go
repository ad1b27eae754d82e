package workflows

import "fmt"

// Budget is a run's cost and token allowance. It lives in the workflow's
// state, so it is durable and per run: a worker crash replays the history
// and rebuilds it exactly. Every call reserves its worst case before it is
// made; when it returns, the reservation is replaced by what it really used.
// A reservation that would go over is refused, so a run never spends more
// than its budget.
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

// Reserve sets aside usd and tokens for call, or refuses.
func (b *Budget) Reserve(call string, usd float64, tokens int64) (Reservation, error) {
	remUSD := b.MaxUSD - b.SpentUSD - b.ReservedUSD
	remTok := b.MaxTokens - b.UsedTokens - b.ReservedTokens
	if usd > remUSD || tokens > remTok {
		return Reservation{}, &BudgetExceededError{Call: call, NeedUSD: usd, RemainingUSD: remUSD, NeedTokens: tokens, RemainingTokens: remTok}
	}
	b.ReservedUSD += usd
	b.ReservedTokens += tokens
	return Reservation{USD: usd, Tokens: tokens}, nil
}

// Settle replaces reservation r by what the call used (zero for a call that
// failed before the provider billed it).
func (b *Budget) Settle(r Reservation, usd float64, tokens int64) {
	b.ReservedUSD -= r.USD
	b.ReservedTokens -= r.Tokens
	b.SpentUSD += usd
	b.UsedTokens += tokens
}
