// Package llm is an OpenAI-compatible chat-completions client (plain and
// streaming), the pricing that turns usage into cost and bounds a call's
// cost before it is made, and a deterministic local server speaking the same
// HTTP API with injectable faults (429, 500, slow, malformed, hold) for
// tests and the default demo. Every call's model, temperature, seed and a
// fingerprint of the prompt are returned with its result, for the run record.
package llm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is a chat completion request.
type Request struct {
	Model       string    `json:"model"`
	Messages    []Message `json:"messages"`
	Temperature float64   `json:"temperature"`
	Seed        int64     `json:"seed"`
	MaxTokens   int       `json:"max_tokens"`
}

// Usage is the tokens a call used, as the server reports them.
type Usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

// Response is a completed call with what reproduces it.
type Response struct {
	Content           string
	FinishReason      string
	Model             string // as the server reports it
	Usage             Usage
	Temperature       float64
	Seed              int64
	PromptFingerprint string
}

// Fingerprint identifies a prompt: the SHA-256 of its messages' roles and
// contents, truncated to 128 bits. Two calls with the same fingerprint,
// model, temperature and seed asked the same question.
func Fingerprint(msgs []Message) string {
	h := sha256.New()
	for _, m := range msgs {
		// Length prefixes keep ("ab","c") apart from ("a","bc").
		fmt.Fprintf(h, "%d:%s%d:%s", len(m.Role), m.Role, len(m.Content), m.Content)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// APIError is an HTTP error answer from the server, or an error it sent
// inside a stream.
type APIError struct {
	Status     int
	Message    string
	RetryAfter time.Duration
	// InStream is an error sent inside a stream that had begun: unlike an
	// error status, it may come after tokens were generated, and billed.
	InStream bool
}

func (e *APIError) Error() string {
	return fmt.Sprintf("chat completions: HTTP %d: %s", e.Status, e.Message)
}

// Retryable reports whether trying again later can succeed: rate limits
// and server errors; other client errors will fail the same way again.
func (e *APIError) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Refused reports whether err is the provider refusing a call with an
// error status before generating anything (a rate limit, a server error, a
// bad request), which providers do not bill. Any other failure (a malformed
// or cut-off answer, an error inside a stream, no answer in time) may come
// after the provider generated tokens, and be billed.
func Refused(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && !ae.InStream
}

// ErrMalformed is a response that is not the chat-completions format.
var ErrMalformed = errors.New("malformed chat completions response")

// Client calls an OpenAI-compatible endpoint.
type Client struct {
	BaseURL string // e.g. https://api.openai.com/v1 or the local server's URL
	APIKey  string
	HTTP    *http.Client
}

type wireRequest struct {
	Request
	Stream        bool           `json:"stream,omitempty"`
	StreamOptions *streamOptions `json:"stream_options,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type wireChoice struct {
	Message      *Message `json:"message,omitempty"`
	Delta        *Message `json:"delta,omitempty"`
	FinishReason *string  `json:"finish_reason"`
}

type wireResponse struct {
	Model   string       `json:"model"`
	Choices []wireChoice `json:"choices"`
	Usage   *Usage       `json:"usage,omitempty"`
	Error   *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

func (c *Client) post(ctx context.Context, req Request, stream bool) (*http.Response, error) {
	wr := wireRequest{Request: req, Stream: stream}
	if stream {
		wr.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	body, err := json.Marshal(wr)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if c.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, apiError(resp)
	}
	return resp, nil
}

func apiError(resp *http.Response) *APIError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	e := &APIError{Status: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	var wr wireResponse
	if json.Unmarshal(b, &wr) == nil && wr.Error != nil {
		e.Message = wr.Error.Message
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

func (req Request) response(model, content, finish string, u Usage) *Response {
	return &Response{
		Content: content, FinishReason: finish, Model: model, Usage: u,
		Temperature: req.Temperature, Seed: req.Seed, PromptFingerprint: Fingerprint(req.Messages),
	}
}

// maxResponseBytes bounds a response body; a completion is far smaller.
const maxResponseBytes = 4 << 20

// Complete makes one non-streaming call.
func (c *Client) Complete(ctx context.Context, req Request) (*Response, error) {
	resp, err := c.post(ctx, req, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var wr wireResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(&wr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(wr.Choices) == 0 || wr.Choices[0].Message == nil || wr.Usage == nil {
		return nil, fmt.Errorf("%w: no choice, message or usage", ErrMalformed)
	}
	finish := ""
	if f := wr.Choices[0].FinishReason; f != nil {
		finish = *f
	}
	return req.response(wr.Model, wr.Choices[0].Message.Content, finish, *wr.Usage), nil
}

// Stream makes one streaming call, passing each piece of content to
// onDelta as it arrives (activities heartbeat there), and returns the whole.
func (c *Client) Stream(ctx context.Context, req Request, onDelta func(string)) (*Response, error) {
	resp, err := c.post(ctx, req, true)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var (
		content strings.Builder
		model   string
		finish  string
		usage   *Usage
		done    bool
	)
	sc := bufio.NewScanner(io.LimitReader(resp.Body, maxResponseBytes))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, ":") {
			continue // event separator or SSE comment
		}
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			continue // other SSE fields (event:, id:) carry nothing we use
		}
		data = strings.TrimSpace(data)
		if data == "[DONE]" {
			done = true
			break
		}
		var chunk wireResponse
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			return nil, fmt.Errorf("%w: chunk %q: %v", ErrMalformed, truncate(data, 80), err)
		}
		if chunk.Error != nil {
			return nil, &APIError{Status: http.StatusInternalServerError, Message: chunk.Error.Message, InStream: true}
		}
		if chunk.Model != "" {
			model = chunk.Model
		}
		if chunk.Usage != nil {
			usage = chunk.Usage
		}
		for _, ch := range chunk.Choices {
			if ch.Delta != nil && ch.Delta.Content != "" {
				content.WriteString(ch.Delta.Content)
				if onDelta != nil {
					onDelta(ch.Delta.Content)
				}
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !done {
		return nil, fmt.Errorf("%w: stream ended without [DONE]", ErrMalformed)
	}
	if usage == nil {
		return nil, fmt.Errorf("%w: stream carried no usage", ErrMalformed)
	}
	return req.response(model, content.String(), finish, *usage), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
