package llm

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LocalModel is the model the local server answers as.
const LocalModel = "durabench-local-1"

// DecomposeInstruction, in a prompt, asks for search queries one per line.
// The agent's prompts use it and the local model recognises it; a real
// model simply follows it.
const DecomposeInstruction = "Return one search query per line and nothing else."

// FaultKind is a failure the local server can be told to produce.
type FaultKind string

// Faults the local server injects.
const (
	FaultRateLimit   FaultKind = "429"       // HTTP 429 with Retry-After
	FaultServerError FaultKind = "500"       // HTTP 500
	FaultSlow        FaultKind = "slow"      // answer after Delay
	FaultMalformed   FaultKind = "malformed" // HTTP 200 with a body that is not the API's format
)

// Fault is injected into the next Times requests (every request until
// ClearFaults when Times is 0).
type Fault struct {
	Kind  FaultKind     `json:"kind"`
	Times int           `json:"times"`
	Delay time.Duration `json:"delay"`
}

// LocalServer is a deterministic chat-completions server: the same request
// always gets the same answer and usage.
type LocalServer struct {
	srv      *http.Server
	url      string
	mu       sync.Mutex
	faults   []Fault
	hold     chan struct{} // non-nil while requests are held
	held     atomic.Int64
	requests atomic.Int64
}

// StartLocal listens on addr (e.g. 127.0.0.1:0) and serves the API under /v1.
func StartLocal(addr string) (*LocalServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("local LLM server: %w", err)
	}
	s := &LocalServer{url: "http://" + l.Addr().String() + "/v1"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []map[string]string{{"id": LocalModel, "object": "model"}}})
	})
	mux.HandleFunc("POST /v1/admin/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&f); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody(err.Error()))
			return
		}
		if err := s.Inject(f); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody(err.Error()))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /v1/admin/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(l)
	return s, nil
}

// URL is the base URL for a Client, ending in /v1.
func (s *LocalServer) URL() string { return s.url }

// Close stops the server, releasing held requests.
func (s *LocalServer) Close() error {
	s.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// Inject queues a fault.
func (s *LocalServer) Inject(f Fault) error {
	if !slices.Contains([]FaultKind{FaultRateLimit, FaultServerError, FaultSlow, FaultMalformed}, f.Kind) {
		return fmt.Errorf("fault kind %q is not 429, 500, slow or malformed", f.Kind)
	}
	if f.Times < 0 || f.Delay < 0 {
		return errors.New("fault times and delay must not be negative")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
	return nil
}

// ClearFaults removes every queued fault.
func (s *LocalServer) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Hold makes requests wait until Release (or until their client gives up),
// so that a test can act while a call is in flight.
func (s *LocalServer) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold = make(chan struct{})
	}
}

// Release lets held requests go on.
func (s *LocalServer) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// Held is the number of requests waiting now.
func (s *LocalServer) Held() int64 { return s.held.Load() }

// Requests is the number of chat requests received.
func (s *LocalServer) Requests() int64 { return s.requests.Load() }

// nextFault pops the fault for this request, if any.
func (s *LocalServer) nextFault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return Fault{}, false
	}
	f := s.faults[0]
	if f.Times > 0 {
		if s.faults[0].Times--; s.faults[0].Times == 0 {
			s.faults = s.faults[1:]
		}
	}
	return f, true
}

func (s *LocalServer) waitIfHeld(ctx context.Context) error {
	s.mu.Lock()
	hold := s.hold
	s.mu.Unlock()
	if hold == nil {
		return nil
	}
	s.held.Add(1)
	defer s.held.Add(-1)
	select {
	case <-hold:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func errorBody(msg string) map[string]any {
	return map[string]any{"error": map[string]string{"message": msg, "type": "invalid_request_error"}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *LocalServer) chat(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	var req wireRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody("invalid JSON: "+err.Error()))
		return
	}
	if len(req.Messages) == 0 {
		writeJSON(w, http.StatusBadRequest, errorBody("messages must not be empty"))
		return
	}
	if err := s.waitIfHeld(r.Context()); err != nil {
		return
	}
	if f, ok := s.nextFault(); ok {
		switch f.Kind {
		case FaultRateLimit:
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusTooManyRequests, errorBody("rate limited (injected)"))
			return
		case FaultServerError:
			writeJSON(w, http.StatusInternalServerError, errorBody("server error (injected)"))
			return
		case FaultMalformed:
			w.Header().Set("Content-Type", "application/json")
			if req.Stream {
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprint(w, "data: {\"choices\": [\n\n")
				return
			}
			fmt.Fprint(w, `{"choices": "not a list"`)
			return
		case FaultSlow:
			select {
			case <-time.After(f.Delay):
			case <-r.Context().Done():
				return
			}
		}
	}
	model := req.Model
	if model == "" {
		model = LocalModel
	}
	words := answer(req.Request)
	finish := "stop"
	if req.MaxTokens > 0 && len(words) > req.MaxTokens {
		words, finish = words[:req.MaxTokens], "length"
	}
	usage := Usage{PromptTokens: promptTokens(req.Messages), CompletionTokens: int64(len(words))}
	usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	if !req.Stream {
		writeJSON(w, http.StatusOK, map[string]any{
			"id": "local-" + Fingerprint(req.Messages), "object": "chat.completion", "model": model,
			"choices": []map[string]any{{"index": 0, "message": Message{Role: "assistant", Content: strings.Join(words, " ")}, "finish_reason": finish}},
			"usage":   usage,
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	for i, word := range words {
		if i > 0 {
			word = " " + word
		}
		send(map[string]any{"object": "chat.completion.chunk", "model": model,
			"choices": []map[string]any{{"index": 0, "delta": Message{Role: "assistant", Content: word}, "finish_reason": nil}}})
	}
	send(map[string]any{"object": "chat.completion.chunk", "model": model, "choices": []map[string]any{{"index": 0, "delta": map[string]any{}, "finish_reason": finish}}})
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		send(map[string]any{"object": "chat.completion.chunk", "model": model, "choices": []any{}, "usage": usage})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// promptTokens counts a word as a token, plus four per message: never more
// than UpperBound's byte count.
func promptTokens(msgs []Message) int64 {
	var n int64
	for _, m := range msgs {
		n += int64(len(strings.Fields(m.Content))) + 4
	}
	return n
}

var stopwords = map[string]bool{
	"about": true, "after": true, "also": true, "from": true, "have": true, "into": true, "that": true,
	"their": true, "there": true, "these": true, "this": true, "what": true, "when": true, "which": true,
	"with": true, "write": true, "your": true, "please": true, "every": true, "each": true, "give": true,
}

// answer is the local model: deterministic in the request.
func answer(req Request) []string {
	var seedBytes [8]byte
	binary.BigEndian.PutUint64(seedBytes[:], uint64(req.Seed))
	h := sha256.Sum256(append(seedBytes[:], Fingerprint(req.Messages)...))
	last := req.Messages[len(req.Messages)-1].Content
	for _, m := range req.Messages {
		if strings.Contains(m.Content, DecomposeInstruction) {
			return words(decompose(last, h))
		}
	}
	return words(synthesise(last, h))
}

// words splits on spaces only, so that a newline stays inside a token and
// joining the (possibly truncated) tokens with spaces keeps the lines.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' })
}

// decompose turns the request's keywords into up to three queries, one per
// line.
func decompose(request string, h [32]byte) string {
	var keys []string
	seen := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(request), func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) {
		if len(w) > 3 && !stopwords[w] && !seen[w] {
			seen[w] = true
			keys = append(keys, w)
		}
	}
	if len(keys) == 0 {
		keys = []string{"news"}
	}
	var lines []string
	for i := 0; i < 3 && i*2 < len(keys); i++ {
		end := min(i*2+3, len(keys))
		lines = append(lines, strings.Join(keys[i*2:end], " "))
	}
	if h[0]%2 == 1 { // the seed picks the order, as sampling would
		slices.Reverse(lines)
	}
	return strings.Join(lines, "\n")
}

// synthesise summarises the sources listed as "- " lines in the prompt.
func synthesise(prompt string, h [32]byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Digest %x.", h[:4])
	n := 0
	for _, line := range strings.Split(prompt, "\n") {
		src, ok := strings.CutPrefix(strings.TrimSpace(line), "- ")
		if !ok {
			continue
		}
		n++
		words := strings.Fields(src)
		fmt.Fprintf(&b, " %d. %s", n, strings.Join(words[:min(len(words), 24)], " "))
	}
	if n == 0 {
		b.WriteString(" No sources were found for this request.")
	}
	fmt.Fprintf(&b, " (%d sources)", n)
	return b.String()
}
