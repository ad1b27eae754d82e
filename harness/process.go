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
}

// serverInfo is the JSON line `durabench devserver` prints when ready.
type serverInfo struct {
	Ready         bool              `json:"ready"`
	Address       string            `json:"address"`
	MetricsURL    string            `json:"metrics_url"`
	Persistence   string            `json:"persistence"`
	ServerVersion string            `json:"server_version"`
	DynamicConfig map[string]string `json:"dynamic_config"`
	PID           int               `json:"pid"`
}

// Server is a dev server child process that can be killed and restarted on
// the same database file and port.
type Server struct {
	bin     string
	args    []string
	dir     string
	info    serverInfo
	mu      sync.Mutex
	proc    *child
	starts  int
	stopped bool
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
	s, err := startServer(e, o)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Logf("harness: stopping server: %v", err)
		}
	})
	return s
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
	if !o.InMemory {
		args = append(args, "--db-file", filepath.Join(dir, "temporal.db"))
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
	s := &Server{bin: bin, args: args, dir: dir}
	if err := s.start(); err != nil {
		return nil, err
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
			var info serverInfo
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
	return waitHealthy(s.info.Address, 60*time.Second)
}

// Address is the frontend host:port; it stays the same across restarts.
func (s *Server) Address() string { return s.info.Address }

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
