package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Delivery is a run's report handed to an operation. It is also the JSON
// body a notify webhook receives and a line of the simulator's record.
type Delivery struct {
	Operation    string `json:"operation"`
	TenantID     string `json:"tenant_id"`
	UserID       string `json:"user_id"`
	ScheduleID   string `json:"schedule_id"`
	ScheduleName string `json:"schedule_name"`
	RunID        string `json:"run_id"`
	Report       string `json:"report"`
}

// IdempotencyKey is the same for every attempt at one delivery. Delivery is
// at least once (an attempt whose answer was lost is made again), so a
// receiver drops the repeats by this key.
func (d Delivery) IdempotencyKey() string { return d.RunID + "/" + d.Operation }

// DeliveryError is a delivery that failed. Permanent means that another
// attempt would fail the same way: the receiver refused the request itself.
type DeliveryError struct {
	Operation string
	Permanent bool
	Err       error
}

func (e *DeliveryError) Error() string { return e.Operation + ": " + e.Err.Error() }
func (e *DeliveryError) Unwrap() error { return e.Err }

// Operations carries out deliveries: notify goes to the Webhook, the
// restricted operations to the Simulator. Where either is nil, the
// operation is recorded in the run's audit trail only.
type Operations struct {
	Webhook   *Webhook
	Simulator *Simulator
}

// Perform carries out d and says what was done, for the audit trail. The
// caller checks the Policy first.
func (o Operations) Perform(ctx context.Context, d Delivery) (string, error) {
	switch {
	case d.Operation == OpNotify && o.Webhook != nil:
		return o.Webhook.Notify(ctx, d)
	case IsRestricted(d.Operation) && o.Simulator != nil:
		return o.Simulator.Perform(d)
	case slices.Contains(Deliverable, d.Operation):
		return "recorded in the audit trail only: no service is configured for " + d.Operation, nil
	}
	return "", &DeliveryError{Operation: d.Operation, Permanent: true, Err: errors.New("not an operation a report can be delivered to")}
}

// webhookTimeout bounds one attempt; the caller's retry policy makes the
// next one.
const webhookTimeout = 10 * time.Second

// Webhook posts each notification as JSON to a URL the operator chose.
type Webhook struct {
	url    string
	host   string // what messages show: webhook URLs often carry a secret in their path or query
	client *http.Client
}

// NewWebhook checks that rawURL is an absolute http or https URL.
func NewWebhook(rawURL string) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("must be an absolute http:// or https:// URL")
	}
	return &Webhook{url: u.String(), host: u.Scheme + "://" + u.Host, client: &http.Client{
		Timeout: webhookTimeout,
		// A redirected POST turns into a GET without the notification.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// Host is the scheme and host of the URL, all that messages show of it.
func (w *Webhook) Host() string { return w.host }

// Notify posts d, with its idempotency key in the Idempotency-Key header.
// Any 2xx answer delivers it. A 4xx other than 408 and 429, or a redirect,
// is a permanent failure; anything else (no answer, 5xx, 408, 429) is
// worth another attempt.
func (w *Webhook) Notify(ctx context.Context, d Delivery) (string, error) {
	body, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", d.IdempotencyKey())
	req.Header.Set("User-Agent", "durabench-agent")
	resp, err := w.client.Do(req)
	if err != nil {
		// A *url.Error repeats the whole URL, secret included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", &DeliveryError{Operation: d.Operation, Err: fmt.Errorf("POST to the webhook at %s: %w", w.host, err)}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return fmt.Sprintf("sent to the webhook at %s (HTTP %d)", w.host, code), nil
	}
	permanent := code >= 300 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
	return "", &DeliveryError{Operation: d.Operation, Permanent: permanent,
		Err: fmt.Errorf("the webhook at %s answered HTTP %d: %q", w.host, code, bytes.TrimSpace(answer))}
}

// simulatedEffect is what the simulator did not do, for each operation.
var simulatedEffect = map[string]string{
	OpDeleteData:        "no data was deleted",
	OpSendEmail:         "no mail was sent",
	OpMakePurchase:      "nothing was bought",
	OpModifyPermissions: "no permission was changed",
}

// Simulator stands in for the services the restricted operations act on (a
// data store, a mail server, a payment provider, a permission system): the
// agent ships no integration with real ones. It performs nothing; it
// records each request it is asked to carry out, one JSON line each, so that
// what an approved operation would have done can be read afterwards.
type Simulator struct {
	mu  sync.Mutex
	out io.Writer
}

// SimulatedRequest is one line of the simulator's record.
type SimulatedRequest struct {
	At             time.Time `json:"at"`
	IdempotencyKey string    `json:"idempotency_key"`
	Delivery
}

// NewSimulator records requests to out.
func NewSimulator(out io.Writer) *Simulator { return &Simulator{out: out} }

// Perform records the request d. A retried delivery is recorded again: the
// record is of what was asked.
func (s *Simulator) Perform(d Delivery) (string, error) {
	effect, ok := simulatedEffect[d.Operation]
	if !ok {
		return "", &DeliveryError{Operation: d.Operation, Permanent: true, Err: errors.New("not an operation the simulator handles")}
	}
	line, err := json.Marshal(SimulatedRequest{At: time.Now().UTC(), IdempotencyKey: d.IdempotencyKey(), Delivery: d})
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.out.Write(append(line, '\n')); err != nil {
		return "", &DeliveryError{Operation: d.Operation, Err: fmt.Errorf("recording the simulated request: %w", err)}
	}
	return "simulated " + d.Operation + ": " + effect + "; the request is in the simulator's record", nil
}
