package tools

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func delivery(op string) Delivery {
	return Delivery{Operation: op, TenantID: "acme", UserID: "alice", ScheduleID: "s1", ScheduleName: "digest", RunID: "run-1", Report: "the report"}
}

// receiver is a local webhook receiver on 127.0.0.1 that answers each
// request with the next status of its script (the last one repeated).
type receiver struct {
	mu       sync.Mutex
	statuses []int
	got      []*http.Request
	bodies   [][]byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.got = append(rc.got, r)
	rc.bodies = append(rc.bodies, body)
	status := rc.statuses[min(len(rc.got), len(rc.statuses))-1]
	if status == http.StatusFound {
		w.Header().Set("Location", "/elsewhere")
	}
	w.WriteHeader(status)
	io.WriteString(w, "answer body")
}

// requests are what the receiver got so far.
func (rc *receiver) requests() ([]*http.Request, [][]byte) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got), slices.Clone(rc.bodies)
}

func TestWebhook(t *testing.T) {
	for _, tt := range []struct {
		name      string
		status    int
		ok        bool
		permanent bool
	}{
		{"204 delivers", http.StatusNoContent, true, false},
		{"200 delivers", http.StatusOK, true, false},
		{"503 is retried", http.StatusServiceUnavailable, false, false},
		{"500 is retried", http.StatusInternalServerError, false, false},
		{"429 is retried", http.StatusTooManyRequests, false, false},
		{"408 is retried", http.StatusRequestTimeout, false, false},
		{"400 is permanent", http.StatusBadRequest, false, true},
		{"404 is permanent", http.StatusNotFound, false, true},
		{"a redirect is not followed", http.StatusFound, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc := &receiver{statuses: []int{tt.status}}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			// The path carries a secret, as many webhook URLs do.
			wh, err := NewWebhook(srv.URL + "/hooks/s3cret?token=t0ken")
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			d := delivery(OpNotify)
			done, err := wh.Notify(ctx, d)

			got, bodies := rc.requests()
			require.Len(t, got, 1, "one attempt per call: retries are the caller's")
			r := got[0]
			assert.Equal(t, http.MethodPost, r.Method)
			assert.Equal(t, "/hooks/s3cret", r.URL.Path)
			assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
			assert.Equal(t, "run-1/notify", r.Header.Get("Idempotency-Key"))
			var sent Delivery
			require.NoError(t, json.Unmarshal(bodies[0], &sent))
			assert.Equal(t, d, sent)

			if tt.ok {
				require.NoError(t, err)
				assert.Contains(t, done, srv.URL)
				assert.NotContains(t, done, "s3cret")
				return
			}
			var de *DeliveryError
			require.ErrorAs(t, err, &de)
			assert.Equal(t, tt.permanent, de.Permanent)
			assert.Contains(t, err.Error(), srv.URL)
			assert.Contains(t, err.Error(), "answer body")
			assert.NotContains(t, err.Error(), "s3cret")
			assert.NotContains(t, err.Error(), "t0ken")
		})
	}
}

func TestWebhookNoAnswer(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang)
	wh, err := NewWebhook(srv.URL + "/hooks/s3cret")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = wh.Notify(ctx, delivery(OpNotify))
	var de *DeliveryError
	require.ErrorAs(t, err, &de)
	assert.False(t, de.Permanent, "a receiver that does not answer may answer the next attempt")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotContains(t, err.Error(), "s3cret")
}

func TestNewWebhook(t *testing.T) {
	for _, raw := range []string{"", "hooks.example.com/x", "ftp://example.com/x", "http://", "/relative", "http://[::1", "mailto:a@example.com"} {
		t.Run(raw, func(t *testing.T) {
			_, err := NewWebhook(raw)
			require.ErrorContains(t, err, "absolute http:// or https:// URL")
		})
	}
	wh, err := NewWebhook("https://hooks.example.com/T0/B1/secret")
	require.NoError(t, err)
	assert.Equal(t, "https://hooks.example.com", wh.Host())
}

// TestSimulator: each request is recorded once per call, whole, as a JSON
// line, also when runs deliver at the same time.
func TestSimulator(t *testing.T) {
	var record bytes.Buffer
	sim := NewSimulator(&record)
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d := delivery(Restricted[i%len(Restricted)])
			d.RunID = "run-" + string(rune('a'+i))
			done, err := sim.Perform(d)
			assert.NoError(t, err)
			assert.Contains(t, done, "simulated "+d.Operation)
		})
	}
	wg.Wait()
	lines := 0
	for sc := bufio.NewScanner(&record); sc.Scan(); lines++ {
		var r SimulatedRequest
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), sc.Text())
		assert.Contains(t, Restricted, r.Operation)
		assert.Equal(t, r.RunID+"/"+r.Operation, r.IdempotencyKey)
		assert.Equal(t, "the report", r.Report)
		assert.WithinDuration(t, time.Now(), r.At, time.Minute)
	}
	assert.Equal(t, n, lines)

	_, err := sim.Perform(delivery(OpNotify))
	var de *DeliveryError
	require.ErrorAs(t, err, &de)
	assert.True(t, de.Permanent)
}

func TestOperationsPerform(t *testing.T) {
	rc := &receiver{statuses: []int{http.StatusNoContent}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	wh, err := NewWebhook(srv.URL)
	require.NoError(t, err)
	var record bytes.Buffer
	configured := Operations{Webhook: wh, Simulator: NewSimulator(&record)}
	for _, tt := range []struct {
		name      string
		ops       Operations
		op        string
		done      string
		webhook   int // requests the receiver gets
		simulated bool
		permanent bool
	}{
		{"notify to the webhook", configured, OpNotify, "sent to the webhook", 1, false, false},
		{"mail to the simulator", configured, OpSendEmail, "simulated send_email: no mail was sent", 0, true, false},
		{"purchase to the simulator", configured, OpMakePurchase, "nothing was bought", 0, true, false},
		{"notify without a webhook", Operations{}, OpNotify, "audit trail only", 0, false, false},
		{"mail without a simulator", Operations{}, OpSendEmail, "audit trail only", 0, false, false},
		{"search is no delivery", configured, OpSearch, "", 0, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc.mu.Lock()
			rc.got, rc.bodies = nil, nil
			rc.mu.Unlock()
			record.Reset()
			done, err := tt.ops.Perform(context.Background(), delivery(tt.op))
			if tt.permanent {
				var de *DeliveryError
				require.ErrorAs(t, err, &de)
				assert.True(t, de.Permanent)
				return
			}
			require.NoError(t, err)
			assert.Contains(t, done, tt.done)
			got, _ := rc.requests()
			assert.Len(t, got, tt.webhook)
			assert.Equal(t, tt.simulated, strings.Contains(record.String(), `"operation":"`+tt.op+`"`))
		})
	}
}
