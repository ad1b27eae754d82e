package cp

import (
	"testing"

	"github.com/durabench/durabench/harness"
)

// roles are the worker child processes a test can SIGKILL.
var roles = map[string]harness.WorkerRole{}

func TestMain(m *testing.M) { harness.Main(m, "cp", roles) }
