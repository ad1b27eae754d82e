package harness

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

func waitForSignal(ctx workflow.Context) (string, error) {
	var v string
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, &v)
	return v, nil
}

// TestServerStopRestartContinues checks the dev server child process: SIGTERM
// shuts it down cleanly (exit status 0), and a restart on the same database
// file continues a workflow that was running.
func TestServerStopRestartContinues(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev server")
	}
	root, err := ModuleRoot()
	require.NoError(t, err)
	env := &Env{Root: root, scratch: t.TempDir()}
	srv, err := startServer(env, ServerOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c := srv.Dial(t)
	tq := TaskQueue(t)
	w := worker.New(c, tq, worker.Options{})
	w.RegisterWorkflow(waitForSignal)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: UniqueID(t, "wf"), TaskQueue: tq}, waitForSignal)
	require.NoError(t, err)

	require.NoError(t, srv.Stop())
	require.NoError(t, srv.proc.waitErr, "SIGTERM must end the server with status 0")
	require.NoError(t, srv.Restart())
	require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", "go", "after restart"))
	var got string
	require.NoError(t, run.Get(ctx, &got))
	require.Equal(t, "after restart", got)
}
