package vr

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// HistoriesDir holds the committed v1 histories and their manifest, relative
// to the module root.
const HistoriesDir = "fixtures/histories/vr"

// Manifest describes the committed v1 histories.
type Manifest struct {
	Recorded      time.Time       `json:"recorded"`
	SDKVersion    string          `json:"sdk_version"`
	ServerVersion string          `json:"server_version"`
	Code          string          `json:"code"` // the flows version that ran them: v1
	Histories     []ManifestEntry `json:"histories"`
}

// ManifestEntry names one committed history.
type ManifestEntry struct {
	File         string `json:"file"`
	WorkflowID   string `json:"workflow_id"`
	WorkflowType string `json:"workflow_type"`
	Shape        string `json:"shape"` // what the run did, e.g. "2 amend updates, then the approve signal"
}

// Committed is a committed history with its manifest entry.
type Committed struct {
	ManifestEntry
	History *historypb.History
}

// LoadCommitted reads the manifest and every history it names from the
// module at root.
func LoadCommitted(root string) (Manifest, []Committed, error) {
	dir := filepath.Join(root, HistoriesDir)
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return m, nil, fmt.Errorf("manifest: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, nil, fmt.Errorf("manifest %s: %w", dir, err)
	}
	if len(m.Histories) == 0 {
		return m, nil, fmt.Errorf("manifest %s names no history", dir)
	}
	out := make([]Committed, 0, len(m.Histories))
	for _, e := range m.Histories {
		f, err := os.Open(filepath.Join(dir, e.File))
		if err != nil {
			return m, nil, err
		}
		h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		f.Close()
		if err != nil {
			return m, nil, fmt.Errorf("history %s: %w", e.File, err)
		}
		if got := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName(); got != e.WorkflowType {
			return m, nil, fmt.Errorf("history %s is of workflow type %q, the manifest says %q", e.File, got, e.WorkflowType)
		}
		out = append(out, Committed{ManifestEntry: e, History: h})
	}
	return m, out, nil
}

// WriteCommitted writes hs and their manifest m into the module at root, in
// the format of `temporal workflow show --output json`.
func WriteCommitted(root string, m Manifest, hs []Committed) error {
	dir := filepath.Join(root, HistoriesDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m.Histories = nil
	for _, c := range hs {
		b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(c.History)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, c.File), append(b, '\n'), 0o644); err != nil {
			return err
		}
		m.Histories = append(m.Histories, c.ManifestEntry)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "manifest.json"), append(b, '\n'), 0o644)
}

// Replayed is the outcome of replaying one history.
type Replayed struct {
	Name         string // the file, or the workflow id of a history fetched from the server
	WorkflowType string
	Err          error // nil: it replayed
}

// ReplayCommitted replays every history in hs with one
// worker.WorkflowReplayer holding the workflows register adds.
func ReplayCommitted(register func(worker.WorkflowRegistry), hs []Committed) []Replayed {
	r := worker.NewWorkflowReplayer()
	register(r)
	out := make([]Replayed, len(hs))
	for i, c := range hs {
		err := r.ReplayWorkflowHistoryWithOptions(quiet, c.History, worker.ReplayWorkflowHistoryOptions{
			OriginalExecution: workflow.Execution{ID: c.WorkflowID},
		})
		out[i] = Replayed{Name: c.File, WorkflowType: c.WorkflowType, Err: err}
	}
	return out
}

// ReplayFromServer lists the closed runs that query matches (a visibility
// query) and replays each, fetched from the server by the replayer, with
// the workflows register adds: one call for a whole set of server histories.
func ReplayFromServer(ctx context.Context, c client.Client, namespace, query string, register func(worker.WorkflowRegistry)) ([]Replayed, error) {
	r := worker.NewWorkflowReplayer()
	register(r)
	var out []Replayed
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, Query: query, NextPageToken: token})
		if err != nil {
			return out, fmt.Errorf("list %q: %w", query, err)
		}
		for _, ex := range resp.GetExecutions() {
			err := r.ReplayWorkflowExecution(ctx, c.WorkflowService(), quiet, namespace, workflow.Execution{
				ID: ex.GetExecution().GetWorkflowId(), RunID: ex.GetExecution().GetRunId(),
			})
			out = append(out, Replayed{Name: ex.GetExecution().GetWorkflowId(), WorkflowType: ex.GetType().GetName(), Err: err})
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}

// Failed returns the outcomes that did not replay.
func Failed(rs []Replayed) []Replayed {
	var out []Replayed
	for _, r := range rs {
		if r.Err != nil {
			out = append(out, r)
		}
	}
	return out
}

// IsMismatch reports whether err is the SDK's nondeterminism error (code
// TMPRL1100), as opposed to a replay that failed for another reason, such as
// an unregistered workflow type.
func IsMismatch(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "TMPRL1100") || strings.Contains(err.Error(), "nondeterministic"))
}

// VersionMarker is a workflow.GetVersion marker found in a history.
type VersionMarker struct {
	ChangeID string
	Version  int
}

// VersionMarkers returns the GetVersion markers of a history, in order.
func VersionMarkers(events []*historypb.HistoryEvent) ([]VersionMarker, error) {
	var out []VersionMarker
	dc := converter.GetDefaultDataConverter()
	for _, ev := range events {
		a := ev.GetMarkerRecordedEventAttributes()
		if ev.GetEventType() != enumspb.EVENT_TYPE_MARKER_RECORDED || a.GetMarkerName() != "Version" {
			continue
		}
		var m VersionMarker
		if err := decodeDetail(dc, a.GetDetails(), "change-id", &m.ChangeID); err != nil {
			return nil, err
		}
		if err := decodeDetail(dc, a.GetDetails(), "version", &m.Version); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func decodeDetail(dc converter.DataConverter, details map[string]*commonpb.Payloads, key string, v any) error {
	p, ok := details[key]
	if !ok {
		return fmt.Errorf("version marker without %q", key)
	}
	return dc.FromPayloads(p, v)
}

// quiet drops the replayer's logs: a failing replay is expected in most
// replay checks and its error is what they record.
var quiet = log.NewStructuredLogger(slog.New(slog.DiscardHandler))
