// Package server runs the background agent as one process: the HTTP API
// and a Temporal worker, by default on the embedded dev server (in-process,
// SQLite file), with the SQLite store and the deterministic local LLM, so
// that a new user can create a schedule with curl a minute after starting
// it. Options point it at a Temporal cluster, PostgreSQL and a real
// OpenAI-compatible endpoint instead. `durabench agent serve` calls Run.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/agent/api"
	"github.com/durabench/durabench/agent/llm"
	"github.com/durabench/durabench/agent/schedules"
	"github.com/durabench/durabench/agent/store"
	"github.com/durabench/durabench/agent/tools"
	"github.com/durabench/durabench/agent/workflows"
	"github.com/durabench/durabench/harness/devserver"
)

// Options configure Run.
type Options struct {
	Listen  string // API address, e.g. 127.0.0.1:8080
	DataDir string // SQLite files of the store and the embedded server

	// TemporalAddress selects an existing server or cluster (TLS, API key
	// and namespace from the SDK's environment configuration); empty runs
	// the embedded dev server in-process.
	TemporalAddress string
	TemporalPort    int // of the embedded server; 0 picks a free port
	Namespace       string

	PostgresDSN string // empty keeps the store in DataDir/agent.db

	LLMBaseURL string // empty runs the local LLM server
	LLMAPIKey  string
	LLMModel   string
	LLMPrice   llm.Price // of LLMModel, for budgets; zero uses the conservative default

	// NotifyWebhook is the URL each notify delivery is posted to; empty
	// records notifications in the audit trail only.
	NotifyWebhook string

	APIKeys        api.Keys // empty: one key is generated and printed
	ReconcileEvery time.Duration
	Config         schedules.Config
	Settings       workflows.Settings
}

// ConfigError is an option that cannot work, naming the flag.
type ConfigError struct {
	Flag string
	Err  error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("%s: %v", e.Flag, e.Err) }
func (e *ConfigError) Unwrap() error { return e.Err }

// Ready is the JSON line printed on stdout once everything runs.
type Ready struct {
	Ready     bool   `json:"ready"`
	API       string `json:"api"`
	APIKey    string `json:"api_key,omitempty"` // only a generated key is printed
	Temporal  string `json:"temporal"`
	Namespace string `json:"namespace"`
	Store     string `json:"store"`
	LLM       string `json:"llm"`
	Model     string `json:"model"`
	TaskQueue string `json:"task_queue"`
	Notify    string `json:"notify"`    // where notify deliveries go
	Simulator string `json:"simulator"` // the file recording the restricted operations' simulated requests
}

// Run serves until ctx ends, then shuts everything down in order.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ready := Ready{Ready: true, Namespace: o.Namespace, TaskQueue: o.Config.TaskQueue}
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return &ConfigError{"--data-dir", err}
	}

	// Listen first: a busy port is the likeliest mistake, and cheap to find.
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return &ConfigError{"--listen", err}
	}
	cleanups = append(cleanups, func() { ln.Close() })
	ready.API = "http://" + ln.Addr().String()

	ops, record, err := operations(o)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { record.Close() })
	ready.Notify, ready.Simulator = "audit trail only", record.Name()
	if ops.Webhook != nil {
		ready.Notify = "webhook at " + ops.Webhook.Host()
	}

	st, desc, err := openStore(ctx, o)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { st.Close() })
	ready.Store = desc

	copts := client.Options{}
	if o.TemporalAddress == "" {
		srv, err := devserver.Start(devserver.Options{IP: "127.0.0.1", Port: o.TemporalPort, DBFile: filepath.Join(o.DataDir, "temporal.db"), Namespaces: []string{o.Namespace}, LogLevel: "error"})
		var ce *devserver.ConfigError
		if errors.As(err, &ce) {
			return &ConfigError{"--temporal-port/--data-dir", err}
		}
		if err != nil {
			return fmt.Errorf("embedded Temporal server: %w", err)
		}
		cleanups = append(cleanups, func() {
			if err := srv.Stop(); err != nil {
				log.Warn("stopping the embedded Temporal server", "err", err)
			}
		})
		copts.HostPort = srv.Info().Address
		ready.Temporal = srv.Info().Address + " (embedded, " + srv.Info().Persistence + ")"
	} else {
		if copts, err = envconfig.LoadDefaultClientOptions(); err != nil {
			return &ConfigError{"TEMPORAL_* environment", err}
		}
		copts.HostPort = o.TemporalAddress
		ready.Temporal = o.TemporalAddress
	}
	copts.Namespace = o.Namespace
	copts.Logger = log.With("component", "temporal-sdk")
	tc, err := dialWithRetry(ctx, copts, log)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, tc.Close)

	lc := &llm.Client{BaseURL: o.LLMBaseURL, APIKey: o.LLMAPIKey, HTTP: &http.Client{}}
	settings := o.Settings
	settings.Model = o.LLMModel
	if o.LLMBaseURL == "" {
		local, err := llm.StartLocal("127.0.0.1:0")
		if err != nil {
			return err
		}
		cleanups = append(cleanups, func() { local.Close() })
		lc.BaseURL = local.URL()
		settings.Model = llm.LocalModel
		ready.LLM = local.URL() + " (local, deterministic)"
	} else {
		ready.LLM = o.LLMBaseURL
		if o.LLMPrice != (llm.Price{}) {
			settings.Pricing.Models[o.LLMModel] = o.LLMPrice
		}
	}
	ready.Model = settings.Model

	keys := o.APIKeys
	if keys.Len() == 0 {
		b := make([]byte, 16)
		rand.Read(b)
		ready.APIKey = "dba_" + hex.EncodeToString(b)
		if err := keys.Add(ready.APIKey, store.Scope{TenantID: "local", UserID: "local"}); err != nil {
			return err
		}
	}

	mgr := schedules.New(tc, st, o.Config)
	corpus, err := tools.DefaultCorpus()
	if err != nil {
		return err
	}
	w := worker.New(tc, o.Config.TaskQueue, worker.Options{})
	workflows.Register(w, &workflows.Activities{
		Store: st, LLM: lc, Corpus: corpus, HTTP: &http.Client{}, Operations: ops, Schedules: mgr, Reconciler: mgr, Settings: settings,
	})
	if err := w.Start(); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	cleanups = append(cleanups, w.Stop)
	if o.ReconcileEvery > 0 {
		if err := mgr.EnsureReconcileSchedule(ctx, o.ReconcileEvery); err != nil {
			return fmt.Errorf("reconciliation schedule: %w", err)
		}
	}

	hs := newHTTPServer(api.New(mgr, keys, log), readTimeout)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	b, _ := json.Marshal(ready)
	fmt.Fprintln(stdout, string(b))
	log.Info("durabench agent is serving", "api", ready.API, "temporal", ready.Temporal, "store", ready.Store, "llm", ready.LLM)

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("API server: %w", err)
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

// readTimeout bounds the time a client takes to send a whole request,
// headers and body (at most 64 KiB): without it, a client that sends its
// body slowly or never holds a connection and a goroutine for as long as
// it likes.
const readTimeout = 30 * time.Second

// newHTTPServer serves h with the read bounds. There is no write timeout:
// it would drop, without a word, the answer of a request that waits long
// on Temporal or the store, where the handler's own error says why.
func newHTTPServer(h http.Handler, read time.Duration) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: min(read, 10*time.Second), ReadTimeout: read, IdleTimeout: 2 * time.Minute}
}

// operations sets up what runs deliver to: the notify webhook, if one is
// configured, and the simulator of the restricted operations, with the
// file in DataDir it records their requests in (mode 0600: they hold
// reports).
func operations(o Options) (tools.Operations, *os.File, error) {
	var ops tools.Operations
	if o.NotifyWebhook != "" {
		wh, err := tools.NewWebhook(o.NotifyWebhook)
		if err != nil {
			return ops, nil, &ConfigError{"--notify-webhook", err}
		}
		ops.Webhook = wh
	}
	f, err := os.OpenFile(filepath.Join(o.DataDir, "simulated-operations.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return ops, nil, &ConfigError{"--data-dir", err}
	}
	ops.Simulator = tools.NewSimulator(f)
	return ops, f, nil
}

func openStore(ctx context.Context, o Options) (*store.Store, string, error) {
	if o.PostgresDSN != "" {
		st, err := store.Open(ctx, store.Postgres, o.PostgresDSN)
		if err != nil {
			return nil, "", &ConfigError{"--postgres-dsn", err}
		}
		return st, "postgres", nil
	}
	path := filepath.Join(o.DataDir, "agent.db")
	st, err := store.Open(ctx, store.SQLite, path)
	if err != nil {
		return nil, "", &ConfigError{"--data-dir", err}
	}
	return st, "sqlite file " + path, nil
}

// dialWithRetry connects to Temporal, retrying with a growing delay for up
// to a minute: a cluster starting beside us may not answer yet.
func dialWithRetry(ctx context.Context, o client.Options, log *slog.Logger) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := client.DialContext(dctx, o)
		dcancel()
		if err == nil {
			return c, nil
		}
		log.Warn("Temporal not reachable yet", "address", o.HostPort, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connecting to Temporal at %s: %w", o.HostPort, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}
