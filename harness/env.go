// Package harness is what every scenario package uses: the environment it
// runs against (an embedded dev server started as a child process, or an
// existing server or cluster named by TEMPORAL_ADDRESS), per-test task
// queues, server and worker child processes that can be SIGKILLed and started
// again, and evidence recording.
//
// A scenario package's TestMain calls Main:
//
//	func TestMain(m *testing.M) { harness.Main(m, "ex", roles) }
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/durabench/durabench/harness/buildinfo"
	"github.com/durabench/durabench/harness/calibrate"
	"github.com/durabench/durabench/harness/evidence"
)

// Environment variables the harness reads.
const (
	EnvAddress     = "TEMPORAL_ADDRESS"       // use this server instead of an embedded one
	EnvEvidenceDir = "DURABENCH_EVIDENCE_DIR" // where evidence goes (default <module>/reports/evidence)
	EnvBinary      = "DURABENCH_BIN"          // a prebuilt durabench binary (default: go build it)
	EnvAttempt     = "DURABENCH_ATTEMPT"      // 2 when `make test` reruns a timing check (recorded in the evidence)
	envRole        = "DURABENCH_ROLE"         // set in a worker child process
	envRoleConfig  = "DURABENCH_ROLE_CONFIG"  // JSON RoleConfig for the child
)

// Env is the environment of one scenario package.
type Env struct {
	Package   string // short name used for evidence files, e.g. "ex"
	PkgPath   string // "./scenarios/ex", for reproduce commands
	Root      string // module root
	External  bool   // true when TEMPORAL_ADDRESS named the server
	Options   client.Options
	server    *Server // the shared embedded server; nil when external
	evidence  *evidence.Writer
	evidenceD string
	scratch   string
	attempt   int // DURABENCH_ATTEMPT: 2 when the compare step reruns a timing check
}

var (
	envMu  sync.Mutex
	theEnv *Env
)

// Main is the TestMain of a scenario package. In a worker child process it
// runs the role named by the environment instead of the tests. roles may be nil.
func Main(m *testing.M, pkg string, roles map[string]WorkerRole) {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(runRole(role, roles))
	}
	env, err := newEnv(pkg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		os.Exit(2)
	}
	envMu.Lock()
	theEnv = env
	envMu.Unlock()
	code := m.Run()
	if env.server != nil {
		if err := env.server.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "harness: stopping shared server: %v\n", err)
		}
	}
	env.evidence.Close()
	os.RemoveAll(env.scratch)
	os.Exit(code)
}

// Get returns the package environment; Main must have run.
func Get(t testing.TB) *Env {
	t.Helper()
	envMu.Lock()
	defer envMu.Unlock()
	if theEnv == nil {
		t.Fatal("harness: no environment: the package's TestMain must call harness.Main")
	}
	return theEnv
}

func newEnv(pkg string) (*Env, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(root, wd)
	if err != nil {
		return nil, err
	}
	env := &Env{Package: pkg, PkgPath: "./" + filepath.ToSlash(rel), Root: root}
	if a := os.Getenv(EnvAttempt); a != "" {
		if env.attempt, err = strconv.Atoi(a); err != nil || env.attempt < 1 {
			return nil, fmt.Errorf("%s=%q: must be a whole number from 1", EnvAttempt, a)
		}
	}
	env.evidenceD = os.Getenv(EnvEvidenceDir)
	if env.evidenceD == "" {
		env.evidenceD = filepath.Join(root, "reports", "evidence")
	}
	if env.scratch, err = os.MkdirTemp("", "durabench-"+pkg+"-"); err != nil {
		return nil, err
	}
	if env.evidence, err = evidence.Create(env.evidenceD, pkg); err != nil {
		return nil, err
	}
	v := buildinfo.Read()
	rec := evidence.Environment{
		Package: pkg, GoVersion: v.Go, SDKVersion: temporal.SDKVersion, CPUs: runtime.NumCPU(),
		OS: runtime.GOOS + "/" + runtime.GOARCH, Recorded: time.Now().UTC(),
	}
	if _, ok := os.LookupEnv(EnvAddress); ok {
		env.External = true
		if env.Options, err = envconfig.LoadDefaultClientOptions(); err != nil {
			return nil, fmt.Errorf("client options from environment: %w", err)
		}
		if env.Options.Namespace == "" {
			env.Options.Namespace = "default"
		}
		rec.Mode, rec.Address, rec.Namespace = "external", env.Options.HostPort, env.Options.Namespace
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := client.DialContext(ctx, env.Options)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", env.Options.HostPort, err)
		}
		defer c.Close()
		info, err := c.WorkflowService().GetSystemInfo(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("system info from %s: %w", env.Options.HostPort, err)
		}
		rec.ServerVersion = info.GetServerVersion()
		rec.Persistence = "unknown (external server)"
	} else {
		srv, err := startServer(env, ServerOptions{Metrics: true})
		if err != nil {
			return nil, err
		}
		env.server = srv
		env.Options = client.Options{HostPort: srv.Address(), Namespace: "default"}
		rec.Mode, rec.Address, rec.Namespace = "embedded", srv.Address(), "default"
		rec.ServerVersion = srv.info.ServerVersion
		rec.Persistence = srv.info.Persistence
		rec.DynamicConfig = srv.info.DynamicConfig
	}
	if err := evidence.WriteEnvironment(env.evidenceD, rec); err != nil {
		return nil, err
	}
	return env, nil
}

// MetricsURL is the shared embedded server's Prometheus endpoint, "" when
// the server is external (its metrics are not ours to read).
func (e *Env) MetricsURL() string {
	if e.server == nil {
		return ""
	}
	return e.server.MetricsURL()
}

// HTTPAddress is the shared embedded server's HTTP API host:port, "" when
// the server is external (its HTTP port is not known to the harness).
func (e *Env) HTTPAddress() string {
	if e.server == nil {
		return ""
	}
	return e.server.HTTPAddress()
}

// Dial returns a client of the package environment, closed at test end.
func (e *Env) Dial(t testing.TB) client.Client {
	t.Helper()
	return dial(t, e.Options)
}

func dial(t testing.TB, o client.Options) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o.Logger = TestLogger(t)
	c, err := client.DialContext(ctx, o)
	if err != nil {
		t.Fatalf("harness: dial %s: %v", o.HostPort, err)
	}
	t.Cleanup(c.Close)
	return c
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// TaskQueue returns a task queue unique to this test and run.
func TaskQueue(t testing.TB) string {
	return UniqueID(t, "tq")
}

// UniqueID returns an id derived from the test name, unique to this run.
func UniqueID(t testing.TB, prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	name := unsafeChars.ReplaceAllString(t.Name(), "-")
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return fmt.Sprintf("%s-%s-%s", prefix, strings.Trim(name, "-"), hex.EncodeToString(b))
}

// Scratch returns a fresh directory under the package's scratch space; unlike
// t.TempDir it is visible to child processes by path and survives until the
// package ends, so a test can keep a killed server's files for diagnosis.
func (e *Env) Scratch(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp(e.scratch, unsafeChars.ReplaceAllString(t.Name(), "-")+"-")
	if err != nil {
		t.Fatalf("harness: scratch dir: %v", err)
	}
	return dir
}

// Calibrate probes the host (harness/calibrate): a fixed CPU workload, and
// fsyncs in a scratch directory, on the disk of the embedded server's
// database (with an external server, on this machine's disk). It takes
// under a second; the test fails if it cannot run.
func (e *Env) Calibrate(ctx context.Context, t testing.TB) calibrate.Probe {
	t.Helper()
	p, err := calibrate.Run(ctx, e.Scratch(t))
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return p
}

// ModuleRoot is the directory of go.mod above the working directory.
func ModuleRoot() (string, error) {
	return buildinfo.ModuleRoot(".")
}

// WaitFor polls cond until it returns true, an error, or the deadline passes.
func WaitFor(ctx context.Context, timeout, every time.Duration, what string, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		ok, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: gave up after %s", what, timeout)
		case <-tick.C:
		}
	}
}

// testLogger routes SDK warnings and errors to the test log, so that the
// expected connection errors of a server kill stay out of the way but remain
// visible with -v. SDK goroutines can outlive the test; after cleanup their
// lines are dropped, since testing panics on a log after completion.
type testLogger struct {
	t    testing.TB
	mu   *sync.Mutex
	done *bool
}

// TestLogger is an SDK logger that writes warnings and errors to t's log
// until t ends.
func TestLogger(t testing.TB) log.Logger {
	l := testLogger{t: t, mu: &sync.Mutex{}, done: new(bool)}
	t.Cleanup(func() {
		l.mu.Lock()
		*l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l testLogger) log(level, msg string, kv []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !*l.done {
		l.t.Logf("sdk %s: %s %v", level, msg, kv)
	}
}

func (l testLogger) Debug(string, ...any)        {}
func (l testLogger) Info(string, ...any)         {}
func (l testLogger) Warn(msg string, kv ...any)  { l.log("warn", msg, kv) }
func (l testLogger) Error(msg string, kv ...any) { l.log("error", msg, kv) }
