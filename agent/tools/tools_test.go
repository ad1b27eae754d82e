package tools

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPolicy(t *testing.T) {
	for _, tt := range []struct {
		name       string
		policy     Policy
		op         string
		restricted bool
		otherErr   bool
	}{
		{"search in background", Policy{Background: true}, OpSearch, false, false},
		{"notify in background", Policy{Background: true}, OpNotify, false, false},
		{"send mail in background", Policy{Background: true}, OpSendEmail, true, false},
		{"delete in background", Policy{Background: true}, OpDeleteData, true, false},
		{"purchase in background", Policy{Background: true, Approved: []string{OpSendEmail}}, OpMakePurchase, true, false},
		{"permissions in background", Policy{Background: true}, OpModifyPermissions, true, false},
		{"approved mail in background", Policy{Background: true, Approved: []string{OpSendEmail}}, OpSendEmail, false, false},
		{"mail with the user present", Policy{}, OpSendEmail, false, false},
		{"unknown operation", Policy{}, "format_disk", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.op)
			var re *RestrictedError
			switch {
			case tt.restricted:
				require.ErrorAs(t, err, &re)
				assert.Equal(t, tt.op, re.Op)
				assert.Contains(t, err.Error(), "approved_operations")
			case tt.otherErr:
				require.Error(t, err)
				assert.NotErrorAs(t, err, &re)
			default:
				require.NoError(t, err)
			}
		})
	}
}

func TestSearchAndFetch(t *testing.T) {
	c, err := DefaultCorpus()
	require.NoError(t, err)
	for _, tt := range []struct {
		query string
		top   string
	}{
		{"daylight saving time zone Tokyo", "timezones"},
		{"cost of a call prompt tokens price", "cost-control"},
		{"worker crash replay history", "durable-execution"},
		{"consecutive failures pause reconciliation", "reliability"},
	} {
		t.Run(tt.query, func(t *testing.T) {
			hits := c.Search(tt.query, 3)
			require.NotEmpty(t, hits)
			assert.Equal(t, tt.top, hits[0].ID)
			assert.LessOrEqual(t, len(hits), 3)
			for i := 1; i < len(hits); i++ {
				assert.GreaterOrEqual(t, hits[i-1].Score, hits[i].Score)
			}
		})
	}
	assert.Empty(t, c.Search("zzzz qqqq", 3))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	text, err := c.Fetch(ctx, http.DefaultClient, "corpus:timezones")
	require.NoError(t, err)
	assert.Contains(t, text, "Asia/Tokyo")
	_, err = c.Fetch(ctx, http.DefaultClient, "corpus:missing")
	require.ErrorIs(t, err, ErrNoDocument)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gone" {
			http.NotFound(w, r)
			return
		}
		w.Write(make([]byte, maxFetchBytes+100))
	}))
	defer srv.Close()
	body, err := c.Fetch(ctx, srv.Client(), srv.URL+"/big")
	require.NoError(t, err)
	assert.Len(t, body, maxFetchBytes)
	_, err = c.Fetch(ctx, srv.Client(), srv.URL+"/gone")
	require.ErrorContains(t, err, "HTTP 404")
}
