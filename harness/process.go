package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness/serverinfo"
)

// ServerOptions configure a dev server child process.
type ServerOptions struct {
	// InMemory keeps no database file, so a restart loses every workflow;
	// negative controls use it.
	InMemory bool
	// DynamicConfig values passed as --dynamic-config-value KEY=VALUE.
	DynamicConfig map[string]string
	// Metrics exposes the server's Prometheus endpoint on a free port.
	Metrics bool
	// Backend is the persistence; the zero value is a SQLite file. A SQL
	// backend gets databases of its own, dropped at the end of the test;
	// check BackendAvailable first.
	Backend Backend
	// HistoryShards is the number of history shards (default 1).
	HistoryShards int
	// Namespaces registered at start; default "default".
	Namespaces []string
	// ArchivalDir enables the filestore archiver under this directory.
	ArchivalDir string
	// JWKSURL enables the server's default JWT claim mapper and authorizer
	// with keys from this URL (permissions claim "permissions").
	JWKSURL string
	// Cluster makes the server a member of a cluster on a SQL backend; with
	// Services a subset of frontend, history, matching and worker, the
	// process runs only those. FrontendAddress is a frontend of the cluster
	// for a member without one. ShareDatabaseOf puts the member on another
	// server's databases (that server drops them).
	Cluster         bool
	Services        []string
	FrontendAddress string
	ShareDatabaseOf *Server
}

// Server is a dev server child process that can be killed and restarted on
// the same database file and port.
type Server struct {
	bin     string
	args    []string
	dir     string
	info    serverinfo.Info
	mu      sync.Mutex
	proc    *child
	starts  int
	stopped bool
	drop    []string // the command that drops a SQL backend's databases
	store   []string // the devserver flags naming a SQL backend's databases
}

// CanKillServer reports whether this environment lets a test kill and
// restart the server; if not, the reason is what the evidence should say.
func (e *Env) CanKillServer() (bool, string) {
	if e.External {
		return false, "the server is external (" + EnvAddress + " is set), so the harness cannot kill and restart it"
	}
	return true, ""
}

// StartServer starts a dedicated dev server for one test, stopped at the end
// of the test. Callers check CanKillServer first.
func (e *Env) StartServer(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	if e.External {
		t.Fatalf("harness: StartServer in external mode; check CanKillServer first")
	}
	s, err := e.TryStartServer(t, o)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return s
}

// TryStartServer is StartServer for a setup that may not start (a schema
// the database rejects, say): the error is returned, for the evidence,
// instead of failing the test.
func (e *Env) TryStartServer(t testing.TB, o ServerOptions) (*Server, error) {
	t.Helper()
	if e.External {
		t.Fatalf("harness: TryStartServer in external mode; check CanKillServer first")
	}
	s, err := startServer(e, o)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Logf("harness: stopping server: %v", err)
		}
		if err := s.dropDatabases(); err != nil {
			t.Errorf("harness: %v", err)
		}
	})
	return s, nil
}

func startServer(e *Env, o ServerOptions) (*Server, error) {
	bin, err := binary(e.Root)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(e.scratch, "server-")
	if err != nil {
		return nil, err
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	args := []string{"devserver", "--port", strconv.Itoa(port), "--log-level", "warn"}
	var drop, store []string
	switch {
	case o.ShareDatabaseOf != nil:
		args = append(args, o.ShareDatabaseOf.store...)
	case o.Backend != SQLite:
		if o.InMemory {
			return nil, fmt.Errorf("ServerOptions: InMemory is for SQLite, not %s", o.Backend)
		}
		db, err := databaseName(e.Package)
		if err != nil {
			return nil, err
		}
		store = o.Backend.storeArgs(db)
		args = append(args, store...)
		drop = append([]string{"devserver"}, store...)
		drop = append(drop, "--drop-databases")
	case !o.InMemory:
		args = append(args, "--db-file", filepath.Join(dir, "temporal.db"))
	}
	if o.HistoryShards > 0 {
		args = append(args, "--history-shards", strconv.Itoa(o.HistoryShards))
	}
	for _, ns := range o.Namespaces {
		args = append(args, "--namespace", ns)
	}
	if o.ArchivalDir != "" {
		args = append(args, "--archival-dir", o.ArchivalDir)
	}
	if o.JWKSURL != "" {
		args = append(args, "--auth-jwks-url", o.JWKSURL)
	}
	if o.Cluster {
		args = append(args, "--cluster")
	}
	if len(o.Services) > 0 {
		args = append(args, "--services", strings.Join(o.Services, ","))
	}
	if o.FrontendAddress != "" {
		args = append(args, "--frontend-address", o.FrontendAddress)
	}
	if o.Metrics {
		mp, err := freeLoopbackPort()
		if err != nil {
			return nil, err
		}
		args = append(args, "--metrics-port", strconv.Itoa(mp))
	}
	for k, v := range o.DynamicConfig {
		args = append(args, "--dynamic-config-value", k+"="+v)
	}
	s := &Server{bin: bin, args: args, dir: dir, drop: drop, store: store}
	if err := s.start(); err != nil {
		return nil, errors.Join(err, s.dropDatabases())
	}
	return s, nil
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c *child
	var err error
	// The server picks free ports for its internal services and binds them
	// a moment later; if another process takes one in between, it exits
	// before it is ready. A fresh start picks other ports.
	for range 3 {
		s.starts++
		logPath := filepath.Join(s.dir, fmt.Sprintf("server-%d.log", s.starts))
		c, err = startChild(exec.Command(s.bin, s.args...), logPath, 90*time.Second, func(line string) bool {
			var info serverinfo.Info
			if json.Unmarshal([]byte(line), &info) == nil && info.Ready {
				s.info = info
				return true
			}
			return false
		})
		if !errors.Is(err, errExitedEarly) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("dev server: %w", err)
	}
	s.proc = c
	if s.info.Address == "" { // a cluster member without a frontend
		return nil
	}
	return waitHealthy(s.info.Address, 60*time.Second)
}

// Address is the frontend host:port; it stays the same across restarts.
func (s *Server) Address() string { return s.info.Address }

// Binary is the durabench binary the server runs from.
func (s *Server) Binary() string { return s.bin }

// HTTPAddress is the frontend's HTTP API host:port; it changes on restart.
func (s *Server) HTTPAddress() string { return s.info.HTTPAddress }

// MetricsURL is the Prometheus endpoint, empty unless ServerOptions.Metrics.
func (s *Server) MetricsURL() string { return s.info.MetricsURL }

// Persistence describes where the server keeps its data.
func (s *Server) Persistence() string { return s.info.Persistence }

// PID is the current server process id.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc.cmd.Process.Pid
}

// Kill SIGKILLs the server process and waits for it to exit.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc.kill()
}

// Restart starts the server again with the same arguments (same port, same
// database file) after Kill or Stop, and waits until it is healthy.
func (s *Server) Restart() error {
	s.mu.Lock()
	s.stopped = false
	s.mu.Unlock()
	return s.start()
}

// Stop sends SIGTERM and waits; it SIGKILLs a server that does not exit in time.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	return s.proc.terminate(30 * time.Second)
}

// Info is what the server announced when it last started: persistence,
// schema versions, shards, archival and authorization settings.
func (s *Server) Info() serverinfo.Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

// dropDatabases drops a SQL backend's databases; nothing for SQLite.
func (s *Server) dropDatabases() error {
	if s.drop == nil {
		return nil
	}
	out, err := exec.Command(s.bin, s.drop...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("dropping databases (%s): %w: %s", strings.Join(s.drop, " "), err, out)
	}
	return nil
}

// Dial returns a client of this server for the default namespace.
func (s *Server) Dial(t testing.TB) client.Client {
	t.Helper()
	return dial(t, client.Options{HostPort: s.Address(), Namespace: "default"})
}

func waitHealthy(addr string, timeout time.Duration) error {
	return WaitFor(context.Background(), timeout, 100*time.Millisecond, "server health at "+addr, func(ctx context.Context) (bool, error) {
		c, err := client.DialContext(ctx, client.Options{HostPort: addr, Logger: nopLogger{}})
		if err != nil {
			return false, nil
		}
		defer c.Close()
		_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err == nil, nil
	})
}

// RoleConfig is what a worker child process is told.
type RoleConfig struct {
	Address   string            `json:"address"`
	Namespace string            `json:"namespace"`
	TaskQueue string            `json:"task_queue"`
	Args      map[string]string `json:"args,omitempty"`
}

// WorkerRole is a worker that a child process runs: Register adds the
// workflows and activities, given the role's configuration. Prepare, if set,
// runs first, for process-global settings that must precede worker.New
// (worker.SetStickyWorkflowCacheSize, say).
type WorkerRole struct {
	Options  worker.Options
	Prepare  func()
	Register func(r worker.Registry, cfg RoleConfig)
}

const workerReady = "DURABENCH_WORKER_READY"

// Worker is a worker child process.
type Worker struct {
	proc *child
}

// StartWorker re-executes the test binary as a worker child process running
// role, waits until it polls, and kills it at the end of the test.
func (e *Env) StartWorker(t testing.TB, role string, cfg RoleConfig) *Worker {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"="+role, envRoleConfig+"="+string(b))
	logPath := filepath.Join(e.Scratch(t), "worker.log")
	c, err := startChild(cmd, logPath, 60*time.Second, func(line string) bool { return line == workerReady })
	if err != nil {
		t.Fatalf("harness: worker %s: %v", role, err)
	}
	w := &Worker{proc: c}
	t.Cleanup(func() { _ = w.Kill() })
	return w
}

// PID is the worker's process id.
func (w *Worker) PID() int { return w.proc.cmd.Process.Pid }

// Kill SIGKILLs the worker and waits for it to exit.
func (w *Worker) Kill() error { return w.proc.kill() }

// Stop sends the worker SIGTERM (it stops polling and finishes what it
// holds) and waits for it to exit; after grace it is SIGKILLed and Stop
// reports that it ignored the signal.
func (w *Worker) Stop(grace time.Duration) error { return w.proc.terminate(grace) }

// runRole is the body of a worker child process.
func runRole(name string, roles map[string]WorkerRole) int {
	role, ok := roles[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "harness: unknown worker role %q\n", name)
		return 2
	}
	var cfg RoleConfig
	if err := json.Unmarshal([]byte(os.Getenv(envRoleConfig)), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "harness: %s: %v\n", envRoleConfig, err)
		return 2
	}
	opts := client.Options{}
	if _, external := os.LookupEnv(EnvAddress); external {
		// Keep the TLS and API key settings of the environment.
		var err error
		if opts, err = envconfig.LoadDefaultClientOptions(); err != nil {
			fmt.Fprintf(os.Stderr, "harness: client options: %v\n", err)
			return 2
		}
	}
	opts.HostPort, opts.Namespace = cfg.Address, cfg.Namespace
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	c, err := client.DialContext(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: worker dial: %v\n", err)
		return 1
	}
	defer c.Close()
	if role.Prepare != nil {
		role.Prepare()
	}
	w := worker.New(c, cfg.TaskQueue, role.Options)
	role.Register(w, cfg)
	if err := w.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "harness: worker start: %v\n", err)
		return 1
	}
	fmt.Println(workerReady)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	w.Stop()
	return 0
}

// errExitedEarly is a child process that ended before its ready line.
var errExitedEarly = errors.New("exited before ready")

// child is a started process whose stdout was scanned for a ready line.
type child struct {
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	logPath string
}

func startChild(cmd *exec.Cmd, logPath string, readyTimeout time.Duration, ready func(line string) bool) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan struct{}), logPath: logPath}
	readyCh := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		signalled := false
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			fmt.Fprintln(logf, line)
			if !signalled && ready(line) {
				signalled = true
				close(readyCh)
			}
		}
		_, _ = io.Copy(logf, stdout)
		c.waitErr = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	select {
	case <-readyCh:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s %w (%v); log %s:\n%s", filepath.Base(cmd.Path), errExitedEarly, c.waitErr, logPath, tail(logPath))
	case <-time.After(readyTimeout):
		_ = c.kill()
		return nil, fmt.Errorf("%s not ready after %s; log %s:\n%s", filepath.Base(cmd.Path), readyTimeout, logPath, tail(logPath))
	}
}

func (c *child) kill() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("pid %d did not exit after SIGKILL", c.cmd.Process.Pid)
	}
}

func (c *child) terminate(grace time.Duration) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(grace):
		return errors.Join(fmt.Errorf("pid %d ignored SIGTERM for %s", c.cmd.Process.Pid, grace), c.kill())
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// nopLogger silences the SDK while polling for health.
type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}
func (nopLogger) Error(string, ...any) {}
