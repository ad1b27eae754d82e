package vr

import (
	"os"
	"testing"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/scenarios/vr/flows/planted"
	v2 "github.com/durabench/durabench/scenarios/vr/flows/v2"
)

// replayVariantEnv names a planted variant (flows/planted) that
// TestV2ReplaysCommittedV1Histories replays instead of v2; VR-02.ci-gate sets
// it in the subprocess it runs the gate in.
const replayVariantEnv = "DURABENCH_VR_REPLAY_VARIANT"

// TestV2ReplaysCommittedV1Histories is the CI gate of this repository, not a
// check: every committed v1 history under fixtures/histories/vr must replay
// against the current v2 code, so an edit to v2 that breaks running v1
// workflows fails `make test` and prints the SDK's mismatch. It uses no
// server.
func TestV2ReplaysCommittedV1Histories(t *testing.T) {
	register, code := v2.RegisterWorkflows, "v2"
	if name := os.Getenv(replayVariantEnv); name != "" {
		v, err := planted.Lookup(name)
		if err != nil {
			t.Fatalf("%s: %v", replayVariantEnv, err)
		}
		register, code = v.RegisterWorkflows, "planted variant "+name+" ("+v.Change+")"
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	m, hs, err := LoadCommitted(root)
	if err != nil {
		t.Fatal(err)
	}
	rs := ReplayCommitted(register, hs)
	for _, r := range Failed(rs) {
		t.Errorf("%s/%s (workflow type %s, recorded by %s with SDK %s) does not replay under %s:\n%v",
			HistoriesDir, r.Name, r.WorkflowType, m.Code, m.SDKVersion, code, r.Err)
	}
	t.Logf("replayed %d committed v1 histories under %s: %d failed", len(rs), code, len(Failed(rs)))
}
