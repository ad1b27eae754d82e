package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func startLocal(t *testing.T) (*LocalServer, *Client) {
	t.Helper()
	s, err := StartLocal("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, &Client{BaseURL: s.URL()}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func digestRequest(seed int64) Request {
	return Request{
		Model: LocalModel, Temperature: 0.2, Seed: seed, MaxTokens: 200,
		Messages: []Message{
			{Role: "system", Content: "You write short digests."},
			{Role: "user", Content: "Sources:\n- Temporal schedules fire workflows at cron times.\n- Budgets stop runaway runs."},
		},
	}
}

// call runs req through Complete or Stream.
type call func(c *Client, ctx context.Context, req Request) (*Response, error)

var modes = map[string]call{
	"complete": func(c *Client, ctx context.Context, req Request) (*Response, error) { return c.Complete(ctx, req) },
	"stream": func(c *Client, ctx context.Context, req Request) (*Response, error) {
		var pieces []string
		resp, err := c.Stream(ctx, req, func(s string) { pieces = append(pieces, s) })
		if err == nil && strings.Join(pieces, "") != resp.Content {
			return nil, fmt.Errorf("deltas %q do not add up to %q", pieces, resp.Content)
		}
		return resp, err
	},
}

func TestLocalServerAnswers(t *testing.T) {
	_, c := startLocal(t)
	for name, do := range modes {
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			req := digestRequest(7)
			a, err := do(c, ctx, req)
			require.NoError(t, err)
			b, err := do(c, ctx, req)
			require.NoError(t, err)
			assert.Equal(t, a, b, "the local model is deterministic")
			assert.Contains(t, a.Content, "Temporal schedules fire workflows")
			assert.Contains(t, a.Content, "(2 sources)")
			assert.Equal(t, LocalModel, a.Model)
			assert.Equal(t, 0.2, a.Temperature)
			assert.Equal(t, int64(7), a.Seed)
			assert.Equal(t, Fingerprint(req.Messages), a.PromptFingerprint)
			assert.Equal(t, "stop", a.FinishReason)
			assert.Equal(t, a.Usage.PromptTokens+a.Usage.CompletionTokens, a.Usage.TotalTokens)
			bound, err := UpperBound(req)
			require.NoError(t, err)
			assert.LessOrEqual(t, a.Usage.PromptTokens, bound.PromptTokens)
			assert.LessOrEqual(t, a.Usage.CompletionTokens, bound.CompletionTokens)

			req.MaxTokens = 3
			short, err := do(c, ctx, req)
			require.NoError(t, err)
			assert.Equal(t, "length", short.FinishReason)
			assert.Equal(t, int64(3), short.Usage.CompletionTokens)

			dec, err := do(c, ctx, Request{Model: LocalModel, MaxTokens: 100, Messages: []Message{
				{Role: "system", Content: "Split the request. " + DecomposeInstruction},
				{Role: "user", Content: "Daily digest about Temporal schedules, durable execution and LLM budgets"},
			}})
			require.NoError(t, err)
			lines := strings.Split(dec.Content, "\n")
			assert.Len(t, lines, 3, "%q", dec.Content)
		})
	}
}

func TestFaults(t *testing.T) {
	s, c := startLocal(t)
	for name, do := range modes {
		for _, tt := range []struct {
			fault Fault
			check func(t *testing.T, err error)
		}{
			{Fault{Kind: FaultRateLimit, Times: 1}, func(t *testing.T, err error) {
				var ae *APIError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, 429, ae.Status)
				assert.True(t, ae.Retryable())
				assert.Equal(t, time.Second, ae.RetryAfter)
				assert.Contains(t, ae.Message, "rate limited")
				assert.True(t, Refused(err), "a refusal is not billed")
			}},
			{Fault{Kind: FaultServerError, Times: 1}, func(t *testing.T, err error) {
				var ae *APIError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, 500, ae.Status)
				assert.True(t, ae.Retryable())
				assert.True(t, Refused(err), "a refusal is not billed")
			}},
			{Fault{Kind: FaultMalformed, Times: 1}, func(t *testing.T, err error) {
				require.ErrorIs(t, err, ErrMalformed)
				assert.False(t, Refused(err), "a malformed answer may be billed")
			}},
		} {
			t.Run(name+"/"+string(tt.fault.Kind), func(t *testing.T) {
				ctx := testCtx(t, 30*time.Second)
				require.NoError(t, s.Inject(tt.fault))
				_, err := do(c, ctx, digestRequest(1))
				tt.check(t, err)
				_, err = do(c, ctx, digestRequest(1))
				require.NoError(t, err, "the fault was injected once")
			})
		}
		t.Run(name+"/slow", func(t *testing.T) {
			require.NoError(t, s.Inject(Fault{Kind: FaultSlow, Times: 2, Delay: 300 * time.Millisecond}))
			short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, err := do(c, short, digestRequest(1))
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.False(t, Refused(err), "an answer that did not come in time may be billed")
			start := time.Now()
			_, err = do(c, testCtx(t, 30*time.Second), digestRequest(1))
			require.NoError(t, err)
			assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
		})
	}
	t.Run("until cleared", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		require.NoError(t, s.Inject(Fault{Kind: FaultServerError}))
		for range 3 {
			_, err := c.Complete(ctx, digestRequest(1))
			require.Error(t, err)
		}
		s.ClearFaults()
		_, err := c.Complete(ctx, digestRequest(1))
		require.NoError(t, err)
	})
	t.Run("bad fault", func(t *testing.T) {
		require.Error(t, s.Inject(Fault{Kind: "teapot"}))
		require.Error(t, s.Inject(Fault{Kind: FaultSlow, Times: -1}))
	})
	t.Run("admin endpoint", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		resp, err := http.Post(s.URL()+"/admin/faults", "application/json", strings.NewReader(`{"kind":"429","times":1}`))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
		_, err = c.Complete(ctx, digestRequest(1))
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		resp, err = http.Post(s.URL()+"/admin/faults", "application/json", strings.NewReader(`{"kind":"boom"}`))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})
}

func TestHold(t *testing.T) {
	s, c := startLocal(t)
	ctx := testCtx(t, 30*time.Second)
	s.Hold()
	done := make(chan error, 1)
	go func() {
		_, err := c.Complete(ctx, digestRequest(1))
		done <- err
	}()
	deadline := time.Now().Add(20 * time.Second)
	for s.Held() != 1 {
		require.True(t, time.Now().Before(deadline), "request never arrived")
		select {
		case err := <-done:
			t.Fatalf("request finished while held: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	s.Release()
	require.NoError(t, <-done)
	assert.Equal(t, int64(1), s.Requests())
}

// TestStreamFormat reads a stream in the hosted API's own shape: comments,
// role-only first delta, usage in a final chunk with no choices.
func TestStreamFormat(t *testing.T) {
	for _, tt := range []struct {
		name string
		body string
		want string
		err  error
	}{
		{"openai shape", ": keep-alive\n\n" +
			`data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n" +
			`data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-x","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}` + "\n\n" +
			`data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-x","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}` + "\n\n" +
			`data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-x","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}` + "\n\n" +
			"data: [DONE]\n\n", "Hello", nil},
		{"no usage", `data: {"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n", "", ErrMalformed},
		{"cut off", `data: {"choices":[{"delta":{"content":"x"}}]}` + "\n\n", "", ErrMalformed},
		{"error chunk", `data: {"error":{"message":"overloaded"}}` + "\n\n", "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				assert.Equal(t, "Bearer k", r.Header.Get("Authorization"))
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			c := &Client{BaseURL: srv.URL, APIKey: "k", HTTP: srv.Client()}
			resp, err := c.Stream(testCtx(t, 30*time.Second), digestRequest(1), nil)
			switch {
			case tt.want != "":
				require.NoError(t, err)
				assert.Equal(t, tt.want, resp.Content)
				assert.Equal(t, "gpt-x", resp.Model)
				assert.Equal(t, Usage{PromptTokens: 9, CompletionTokens: 2, TotalTokens: 11}, resp.Usage)
			case tt.err != nil:
				require.ErrorIs(t, err, tt.err)
			default:
				var ae *APIError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, "overloaded", ae.Message)
				assert.False(t, Refused(err), "an error inside a stream may come after billed tokens")
			}
		})
	}
}

func TestPricingAndBounds(t *testing.T) {
	p := DefaultPricing()
	assert.Equal(t, Price{InputPerMTok: 5, OutputPerMTok: 15}, p.For(LocalModel))
	assert.Equal(t, p.Default, p.For("unknown-model"))
	assert.InDelta(t, 0.0125, Price{InputPerMTok: 5, OutputPerMTok: 15}.Cost(Usage{PromptTokens: 1000, CompletionTokens: 500}), 1e-12)
	_, err := UpperBound(Request{Messages: []Message{{Role: "user", Content: "x"}}})
	require.Error(t, err, "no max_tokens, no bound")
	b, err := UpperBound(Request{MaxTokens: 10, Messages: []Message{{Role: "user", Content: "hello"}}})
	require.NoError(t, err)
	assert.Equal(t, Bound{PromptTokens: 3 + 4 + 5 + 8, CompletionTokens: 10}, b)

	assert.NotEqual(t, Fingerprint([]Message{{Role: "ab", Content: "c"}}), Fingerprint([]Message{{Role: "a", Content: "bc"}}))
	assert.Len(t, Fingerprint(nil), 32)
	assert.False(t, errors.Is(&APIError{Status: 400}, ErrMalformed))
	assert.False(t, (&APIError{Status: 400}).Retryable())
}
