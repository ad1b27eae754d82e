// Package agenttest sets up the background agent for tests on a real
// Temporal server: the dev server (one per test package), a store, the local LLM server, the schedule manager and an
// in-process worker, each named per test so that tests share the server
// without seeing each other's schedules.
package agenttest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/agent/llm"
	"github.com/durabench/durabench/agent/schedules"
	"github.com/durabench/durabench/agent/store"
	"github.com/durabench/durabench/agent/tools"
	"github.com/durabench/durabench/agent/workflows"
	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/devserver"
)

// shared is the dev server of a test package, started on first use so that
// tests that need none (and fuzzing workers) do not pay for it.
var shared struct {
	once sync.Once
	addr string
	stop func()
	err  error
}

// Addr returns the address of the package's dev server, starting it.
func Addr(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() { shared.addr, shared.stop, shared.err = startServer() })
	if shared.err != nil {
		t.Fatalf("agenttest: dev server: %v", shared.err)
	}
	return shared.addr
}

// Main is a test package's TestMain: it runs the tests, then stops the dev
// server if one was started.
func Main(m *testing.M) {
	code := m.Run()
	if shared.stop != nil {
		shared.stop()
	}
	os.Exit(code)
}

// startServer runs `durabench devserver` as a child process when the
// binary is there (DURABENCH_BIN, or bin/durabench of the module), else
// the same server in-process. The child is preferred: the server picks its
// internal ports by asking for free ones and binding them later, so another
// process can take one in between, and the server then exits the process;
// a child that does so is simply started again.
func startServer() (string, func(), error) {
	bin := os.Getenv("DURABENCH_BIN")
	if bin == "" {
		if root, err := harness.ModuleRoot(); err == nil {
			bin = filepath.Join(root, "bin", "durabench")
		}
	}
	if _, err := os.Stat(bin); bin == "" || err != nil {
		srv, err := devserver.Start(devserver.Options{IP: "127.0.0.1", LogLevel: "error"})
		if err != nil {
			return "", nil, err
		}
		return srv.Info().Address, func() {
			if err := srv.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "agenttest: stopping the dev server: %v\n", err)
			}
		}, nil
	}
	var errs []error
	for attempt := 1; attempt <= 3; attempt++ {
		addr, stop, err := startChildServer(bin)
		if err == nil {
			return addr, stop, nil
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", attempt, err))
	}
	return "", nil, errors.Join(errs...)
}

func startChildServer(bin string) (string, func(), error) {
	cmd := exec.Command(bin, "devserver", "--ip", "127.0.0.1", "--port", "0", "--log-level", "error")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	ready := make(chan string, 1)
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var info struct {
				Ready   bool   `json:"ready"`
				Address string `json:"address"`
			}
			if json.Unmarshal(sc.Bytes(), &info) == nil && info.Ready {
				ready <- info.Address
			}
		}
		exited <- cmd.Wait()
	}()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	select {
	case addr := <-ready:
		return addr, stop, nil
	case err := <-exited:
		return "", nil, fmt.Errorf("%s devserver exited before ready (%v): %s", bin, err, lastLines(stderr.String()))
	case <-time.After(120 * time.Second):
		stop()
		return "", nil, fmt.Errorf("%s devserver not ready after 120s", bin)
	}
}

func lastLines(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// Dial connects to addr, closing the client at the end of the test.
func Dial(t testing.TB, addr string) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: addr, Logger: quiet{}})
	if err != nil {
		t.Fatalf("agenttest: dial %s: %v", addr, err)
	}
	t.Cleanup(c.Close)
	return c
}

// quiet drops the SDK's logging: expected errors (a killed worker, an
// injected fault) would fill the test output.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9]+`)

// Unique is a name unique to this test and run.
func Unique(t testing.TB, prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	name := unsafe.ReplaceAllString(t.Name(), "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return prefix + name + "-" + hex.EncodeToString(b) + "-"
}

// Env is the agent wired for one test.
type Env struct {
	Client   client.Client
	Store    *store.Store
	LLM      *llm.LocalServer
	Manager  *schedules.Manager
	Config   schedules.Config
	Settings workflows.Settings
}

// Options adjust an Env before it starts.
type Options struct {
	Config   func(*schedules.Config)
	Settings func(*workflows.Settings)
	NoWorker bool // the test runs its own workers
}

// New wires the agent against the package's dev server with the given store.
func New(t testing.TB, st *store.Store, o Options) *Env {
	t.Helper()
	e := &Env{Client: Dial(t, Addr(t)), Store: st, Config: schedules.DefaultConfig(), Settings: workflows.DefaultSettings()}
	e.Config.TaskQueue = Unique(t, "tq-")
	e.Config.IDPrefix = Unique(t, "agent-")
	e.Settings.LLMAttempts = 1
	e.Settings.HeartbeatTimeout = 3 * time.Second
	if o.Config != nil {
		o.Config(&e.Config)
	}
	if o.Settings != nil {
		o.Settings(&e.Settings)
	}
	srv, err := llm.StartLocal("127.0.0.1:0")
	if err != nil {
		t.Fatalf("agenttest: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	e.LLM = srv
	e.Manager = schedules.New(e.Client, st, e.Config)
	if !o.NoWorker {
		e.StartWorker(t)
	}
	return e
}

// Activities are this Env's activities.
func (e *Env) Activities(t testing.TB) *workflows.Activities {
	t.Helper()
	corpus, err := tools.DefaultCorpus()
	if err != nil {
		t.Fatalf("agenttest: %v", err)
	}
	return &workflows.Activities{
		Store: e.Store, LLM: &llm.Client{BaseURL: e.LLM.URL()}, Corpus: corpus, HTTP: http.DefaultClient,
		Schedules: e.Manager, Reconciler: e.Manager, Settings: e.Settings,
	}
}

// StartWorker runs an in-process worker until the test ends.
func (e *Env) StartWorker(t testing.TB) worker.Worker {
	t.Helper()
	w := worker.New(e.Client, e.Config.TaskQueue, worker.Options{StickyScheduleToStartTimeout: time.Second})
	workflows.Register(w, e.Activities(t))
	if err := w.Start(); err != nil {
		t.Fatalf("agenttest: worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return w
}

// WaitFor polls cond every 100ms until it holds, errs or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: gave up after %s", what, timeout)
		case <-tick.C:
		}
	}
}

// WaitRunClosed waits until the run record has ended and returns it.
func (e *Env) WaitRunClosed(t testing.TB, scope store.Scope, runID string, timeout time.Duration) *store.Run {
	t.Helper()
	var run *store.Run
	WaitFor(t, timeout, "run "+runID+" to close", func(ctx context.Context) (bool, error) {
		r, err := e.Store.GetRun(ctx, scope, runID)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		run = r
		return r.EndedAt != nil, nil
	})
	return run
}
