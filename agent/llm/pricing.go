package llm

import "fmt"

// Price is a model's price in USD per million tokens.
type Price struct {
	InputPerMTok  float64 `json:"input_per_mtok"`
	OutputPerMTok float64 `json:"output_per_mtok"`
}

// Cost is what usage u costs at p.
func (p Price) Cost(u Usage) float64 {
	return (float64(u.PromptTokens)*p.InputPerMTok + float64(u.CompletionTokens)*p.OutputPerMTok) / 1e6
}

// Pricing maps model names to prices; models not listed cost Default.
type Pricing struct {
	Models  map[string]Price
	Default Price
}

// DefaultPricing prices the local model like a large hosted one, so that
// budgets in the demo and the tests bite, and unknown models at a
// deliberately high rate, so that a budget never underestimates them.
func DefaultPricing() Pricing {
	return Pricing{
		Models:  map[string]Price{LocalModel: {InputPerMTok: 5, OutputPerMTok: 15}},
		Default: Price{InputPerMTok: 15, OutputPerMTok: 60},
	}
}

// For returns the price of model.
func (p Pricing) For(model string) Price {
	if pr, ok := p.Models[model]; ok {
		return pr
	}
	return p.Default
}

// Bound is an upper bound of the tokens a request can use: the prompt is
// counted as one token per byte (a byte-level BPE token covers at least one
// byte) plus a per-message overhead, and the completion as max_tokens.
type Bound struct {
	PromptTokens     int64
	CompletionTokens int64
}

// perMessageOverhead covers the role and separator tokens chat formats add.
const perMessageOverhead = 8

// UpperBound returns the most tokens req can consume. A request without
// max_tokens has no bound and is refused, since its cost cannot be charged
// before the call.
func UpperBound(req Request) (Bound, error) {
	if req.MaxTokens <= 0 {
		return Bound{}, fmt.Errorf("max_tokens must be positive to bound the cost of a call")
	}
	b := Bound{PromptTokens: 3, CompletionTokens: int64(req.MaxTokens)}
	for _, m := range req.Messages {
		b.PromptTokens += int64(len(m.Role)+len(m.Content)) + perMessageOverhead
	}
	return b, nil
}

// Cost of the bound at price p.
func (b Bound) Cost(p Price) float64 {
	return p.Cost(Usage{PromptTokens: b.PromptTokens, CompletionTokens: b.CompletionTokens})
}

// Tokens of the bound.
func (b Bound) Tokens() int64 { return b.PromptTokens + b.CompletionTokens }
