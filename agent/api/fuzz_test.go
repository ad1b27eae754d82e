package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/durabench/durabench/agent/schedules"
)

// FuzzDecodeCreate feeds arbitrary bodies and content types through the
// create request's decoding and validation: no panic, and every refusal is
// an answer with a fitting status (400, 413, 415) or a RuleError. A body
// that decodes has each top-level key once and exactly as the field is
// named, and no control character in a single-line field.
func FuzzDecodeCreate(f *testing.F) {
	f.Add("application/json", []byte(`{"name":"d","cron":"0 9 * * *","timezone":"Asia/Tokyo","query":"q","budget_usd":1}`))
	f.Add("application/json", []byte(`{"name":"d","cron":"0,1 9 * * *","query":"q","budget_usd":-1,"max_tokens":5,"timeout_seconds":9}`))
	f.Add("application/json; charset=utf-8", []byte(`{"name":"d","cron":"0 9 * * *","query":"q","deliver":["send_email"],"approved_operations":["send_email"]}`))
	f.Add("application/json", []byte(`{"budget_usd":1e400}`))
	f.Add("application/json", []byte(`{"unknown":1}`))
	f.Add("application/json", []byte(`[]`))
	f.Add("application/json", []byte(`{"name":"a"}{"name":"b"}`))
	f.Add("text/plain", []byte(`{}`))
	f.Add("", []byte(``))
	f.Add("application/json", []byte(`{"name":"d","Cron":"0 9 * * *","query":"q"}`))
	f.Add("application/json", []byte(`{"name":"d","cron":"0 9 * * *","cron":"0 10 * * *","query":"q"}`))
	f.Add("application/json", []byte(`{"name":"d","cron":"0 9\n* * *","query":"q\nq"}`))
	f.Add("application/json", []byte(`{"name":"d","\u0043ron":"0 9 * * *","cr\u006fn":"1 9 * * *","query":"q"}`))
	f.Add("application/json", []byte(`{"name":"d","cron":"0 9 * * *","query":"q","max_to`+"\u212a"+`ens":5}`))
	f.Add("application/json", []byte(`{"deliver":["notify"],"deliver":[],"name":{"a":1,"a":2}}`))
	limits := schedules.DefaultLimits()
	now := time.Date(2026, time.June, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		var in schedules.Input
		err := decodeJSON(contentType, http.MaxBytesReader(nil, io.NopCloser(strings.NewReader(string(body))), maxBodyBytes), &in, true)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("decode error %T is not an API error: %v", err, err)
			}
			switch ae.Status {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			default:
				t.Fatalf("decode answered %d: %v", ae.Status, ae)
			}
			if ae.Message == "" || ae.Code == "" {
				t.Fatalf("answer without code or message: %+v", ae)
			}
			if ae.Rule != "" && (ae.Field == "" || !strings.Contains(ae.Message, ae.Rule)) {
				t.Fatalf("a rule's refusal must name the field and the rule: %+v", ae)
			}
			return
		}
		keys := topLevelKeys(body)
		fields := jsonFields(&in)
		for i, k := range keys {
			if !fields[k] || slices.Contains(keys[:i], k) {
				t.Fatalf("accepted key %q of %q", k, keys)
			}
		}
		for _, s := range []string{in.Name, in.Cron, in.Timezone} {
			if strings.ContainsFunc(s, unicode.IsControl) {
				t.Fatalf("accepted a control character in %q", s)
			}
		}
		if _, err := limits.Validate(in, now); err != nil {
			var re *schedules.RuleError
			if !errors.As(err, &re) || re.Field == "" || re.Rule == "" {
				t.Fatalf("validation error is not a RuleError naming field and rule: %v", err)
			}
		}
	})
}

// topLevelKeys lists the keys of body's top-level object in order, repeats
// included. It counts depth over the token stream, unlike checkKeys, so
// that the two can be held against each other: at depth 1 keys and values
// alternate, a nested value counting once when it closes.
func topLevelKeys(body []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(body))
	var keys []string
	depth, items := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return keys
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
				continue
			}
			depth--
			if depth == 1 {
				items++
			}
			continue
		}
		if depth == 1 {
			if k, ok := tok.(string); ok && items%2 == 0 {
				keys = append(keys, k)
			}
			items++
		}
	}
}

// FuzzListParams feeds arbitrary query strings to the list parameters.
func FuzzListParams(f *testing.F) {
	for _, q := range []string{"", "page_size=5", "page_size=0", "page_size=-1&status=active", "status=paused&page_token=abc", "page_size=99999999999999999999", "%zz"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/schedules", nil)
		r.URL.RawQuery = rawQuery
		p, err := parsePage(r)
		if err == nil && (p.Limit < 1 || p.Limit > maxPageSize) {
			t.Fatalf("accepted page size %d", p.Limit)
		}
		checkAnswer(t, err)
		q, _ := url.ParseQuery(rawQuery)
		_, err = parseStatus(q.Get("status"))
		checkAnswer(t, err)
	})
}

func checkAnswer(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Field == "" {
		t.Fatalf("not a 400 naming a field: %v", err)
	}
}
