package op

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// OP-07's workflows and activities: a run that collects signalled notes and
// answers a query (namespace isolation), a run that says which worker ran it
// (worker isolation), a quiet tenant's sequential steps that report their
// schedule-to-start and a noisy tenant's fan-out that fills a task queue
// (noisy neighbour).

const (
	tenantNoteSignal  = "tenantNote"
	tenantDoneSignal  = "tenantDone"
	tenantNotesQuery  = "tenantNotes"
	tenantWhoRunsName = "TenantWhoRuns"
	tenantStepName    = "TenantStep"
	tenantNoisyName   = "TenantNoisy"
)

// TenantNotesWorkflow collects the notes signalled to it until it is told it
// is done, and answers a query with those received so far.
func TenantNotesWorkflow(ctx workflow.Context) ([]string, error) {
	notes := []string{}
	if err := workflow.SetQueryHandler(ctx, tenantNotesQuery, func() ([]string, error) { return notes, nil }); err != nil {
		return nil, err
	}
	noteCh, doneCh := workflow.GetSignalChannel(ctx, tenantNoteSignal), workflow.GetSignalChannel(ctx, tenantDoneSignal)
	for done := false; !done; {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(noteCh, func(c workflow.ReceiveChannel, _ bool) {
			var n string
			c.Receive(ctx, &n)
			notes = append(notes, n)
		})
		sel.AddReceive(doneCh, func(c workflow.ReceiveChannel, _ bool) {
			c.Receive(ctx, nil)
			done = true
		})
		sel.Select(ctx)
	}
	return notes, nil
}

// tenantRunner is a worker's workflow that names the worker: each worker
// registers it under the same workflow type with its own label, so a run's
// result says which worker ran it and in which namespace.
type tenantRunner struct{ label string }

// WhoRuns returns the worker's label and the run's namespace.
func (r tenantRunner) WhoRuns(ctx workflow.Context) (string, error) {
	return fmt.Sprintf("%s ran it in namespace %s", r.label, workflow.GetInfo(ctx).Namespace), nil
}

// TenantStepsWorkflow runs n steps one after the other and returns each
// step's schedule-to-start latency in milliseconds.
func TenantStepsWorkflow(ctx workflow.Context, n int) ([]float64, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
		// Through the task queue: an eagerly started activity never waits
		// in matching, so it would show no schedule-to-start at all.
		DisableEagerExecution: true,
	})
	out := make([]float64, 0, n)
	for range n {
		var ms float64
		if err := workflow.ExecuteActivity(ctx, tenantStepName).Get(ctx, &ms); err != nil {
			return out, err
		}
		out = append(out, ms)
	}
	return out, nil
}

// TenantStep reports its own schedule-to-start latency as the server
// recorded it (scheduled and started times of the task), in milliseconds.
func TenantStep(ctx context.Context) (float64, error) {
	info := activity.GetInfo(ctx)
	return float64(info.StartedTime.Sub(info.ScheduledTime).Microseconds()) / 1000, nil
}

// TenantFanOut is a noisy tenant's burst: N activities scheduled at once on
// Queue.
type TenantFanOut struct {
	N     int
	Queue string
}

// TenantFanOutWorkflow schedules every activity of its burst in one workflow
// task and waits for them; on a queue without enough workers they stay as a
// backlog.
func TenantFanOutWorkflow(ctx workflow.Context, in TenantFanOut) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           in.Queue,
		StartToCloseTimeout: time.Minute,
	})
	futures := make([]workflow.Future, in.N)
	for i := range futures {
		futures[i] = workflow.ExecuteActivity(ctx, tenantNoisyName)
	}
	done := 0
	for _, f := range futures {
		if f.Get(ctx, nil) == nil {
			done++
		}
	}
	return done, nil
}

// tenantNoisyWork is what one noisy activity takes: the noisy tenant's
// workers drain its backlog slowly.
const tenantNoisyWork = 20 * time.Millisecond

// noisyWork stands for a noisy tenant's unit of work; done counts the
// units finished, since the server's backlog count is cached for seconds
// and cannot time a drain.
type noisyWork struct{ done *atomic.Int64 }

func (n noisyWork) Run(ctx context.Context) error {
	t := time.NewTimer(tenantNoisyWork)
	defer t.Stop()
	select {
	case <-t.C:
		n.done.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// registerTenant registers OP-07's workflows and activities on a worker
// labelled label; noisyDone counts its finished noisy activities.
func registerTenant(r worker.Registry, label string, noisyDone *atomic.Int64) {
	r.RegisterWorkflow(TenantNotesWorkflow)
	r.RegisterWorkflowWithOptions(tenantRunner{label: label}.WhoRuns, workflow.RegisterOptions{Name: tenantWhoRunsName})
	r.RegisterWorkflow(TenantStepsWorkflow)
	r.RegisterWorkflow(TenantFanOutWorkflow)
	r.RegisterActivityWithOptions(TenantStep, activity.RegisterOptions{Name: tenantStepName})
	r.RegisterActivityWithOptions(noisyWork{done: noisyDone}.Run, activity.RegisterOptions{Name: tenantNoisyName})
}

// tenantIsDenied reports whether err is the server's PermissionDenied.
func tenantIsDenied(err error) bool {
	var pd *serviceerror.PermissionDenied
	return errors.As(err, &pd)
}

// tenantIsExhausted reports whether err is the server's ResourceExhausted.
func tenantIsExhausted(err error) bool {
	var re *serviceerror.ResourceExhausted
	return errors.As(err, &re)
}

// tenantIsNotFound reports whether err is the server's NotFound.
func tenantIsNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

// tenantIssuer signs JWTs with an RSA key and serves its public half as a
// JWKS on loopback, as an identity provider would; it counts the fetches.
type tenantIssuer struct {
	key     *rsa.PrivateKey
	kid     string
	url     string
	fetches atomic.Int64
}

func newTenantIssuer(t *testing.T, kid string) *tenantIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("harness: RSA key: %v", err)
	}
	iss := &tenantIssuer{key: key, kid: kid}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}}}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatalf("harness: JWKS: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		iss.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	iss.url = srv.URL + "/.well-known/jwks.json"
	return iss
}

// token signs a JWT for subject with the given permissions
// ("namespace:role"), valid for ten minutes.
func (i *tenantIssuer) token(t *testing.T, subject string, permissions ...string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: i.key, KeyID: i.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatalf("harness: JWT signer: %v", err)
	}
	now := time.Now()
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: subject, IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(10 * time.Minute))}).
		Claims(map[string]any{"permissions": permissions}).Serialize()
	if err != nil {
		t.Fatalf("harness: JWT: %v", err)
	}
	return tok
}
