package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durabench/durabench/agent/schedules"
)

// TestDecodeStrictKeys: encoding/json alone accepts every body below (a key
// in another case sets the field, a repeated key overwrites the first, a
// newline rides along in a string); each is refused with 400, the field and
// the rule.
func TestDecodeStrictKeys(t *testing.T) {
	const valid = `"name":"d","query":"q"`
	for _, tt := range []struct {
		name, body  string
		field, rule string
	}{
		{"key in another case", `{` + valid + `,"Cron":"0 9 * * *"}`, "cron", ruleKeyCase},
		{"key in upper case", `{` + valid + `,"CRON":"0 9 * * *"}`, "cron", ruleKeyCase},
		{"key escaped into another case", `{` + valid + `,"\u0043ron":"0 9 * * *"}`, "cron", ruleKeyCase},
		{"Kelvin sign folding to k", `{` + valid + `,"cron":"0 9 * * *","max_to` + "\u212a" + `ens":5}`, "max_tokens", ruleKeyCase},
		{"long s folding to s", `{` + valid + `,"cron":"0 9 * * *","budget_u` + "\u017f" + `d":1}`, "budget_usd", ruleKeyCase},
		{"duplicate key", `{` + valid + `,"cron":"0 9 * * *","cron":"0 10 * * *"}`, "cron", ruleDuplicateKey},
		{"duplicate key with another value type", `{` + valid + `,"cron":"0 9 * * *","budget_usd":1,"budget_usd":"x"}`, "budget_usd", ruleDuplicateKey},
		{"unknown key", `{` + valid + `,"cron_expression":"0 9 * * *"}`, "cron_expression", ruleUnknownField},
		{"empty key", `{` + valid + `,"":"0 9 * * *"}`, `""`, ruleUnknownField},
		{"newline inside the cron", `{` + valid + `,"cron":"0 9\n* * *"}`, "cron", ruleControlCharacter},
		{"newline after the cron", `{` + valid + `,"cron":"0 9 * * *\n"}`, "cron", ruleControlCharacter},
		{"escaped newline in the cron", `{` + valid + `,"cron":"0 9 * * *\u000a"}`, "cron", ruleControlCharacter},
		{"tab in the timezone", `{` + valid + `,"cron":"0 9 * * *","timezone":"Asia/\tTokyo"}`, "timezone", ruleControlCharacter},
		{"NUL in the name", `{"name":"a\u0000b","query":"q","cron":"0 9 * * *"}`, "name", ruleControlCharacter},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var in schedules.Input
			err := decodeJSON("application/json", strings.NewReader(tt.body), &in, true)
			var ae *apiError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, http.StatusBadRequest, ae.Status)
			assert.Equal(t, tt.field, ae.Field)
			assert.Equal(t, tt.rule, ae.Rule)
			assert.Contains(t, ae.Message, tt.field)
			assert.Contains(t, ae.Message, tt.rule)
		})
	}
}

// TestDecodeAccepts: what the strict reading must still let through.
func TestDecodeAccepts(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		want       schedules.Input
	}{
		{"every field once", `{"name":"d","cron":"0 9 * * *","timezone":"Asia/Tokyo","query":"q","deliver":["notify"]}`,
			schedules.Input{Name: "d", Cron: "0 9 * * *", Timezone: "Asia/Tokyo", Query: "q", Deliver: []string{"notify"}}},
		{"a query spanning lines", `{"name":"d","cron":"0 9 * * *","query":"line one\nline two\ttab"}`,
			schedules.Input{Name: "d", Cron: "0 9 * * *", Query: "line one\nline two\ttab"}},
		{"a key spelled with escapes", `{"name":"d","cr\u006fn":"0 9 * * *","query":"q"}`,
			schedules.Input{Name: "d", Cron: "0 9 * * *", Query: "q"}},
		{"whitespace around", " \n{ \"name\" : \"d\" , \"cron\":\"0 9 * * *\",\"query\":\"q\" }\n",
			schedules.Input{Name: "d", Cron: "0 9 * * *", Query: "q"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var in schedules.Input
			require.NoError(t, decodeJSON("application/json", strings.NewReader(tt.body), &in, true))
			assert.Equal(t, tt.want, in)
		})
	}
}

// TestDecodeMalformedKeepsItsMessage: malformed JSON met before any key is
// refused is left to the decoder, which says where it went wrong, even
// when a key check would have something to say about what follows.
func TestDecodeMalformedKeepsItsMessage(t *testing.T) {
	for _, body := range []string{`{"name": x, "name": 1}`, `{"name":"a",`, `[1,2]`, `{"name":"a"} {"name":"b"}`} {
		t.Run(body, func(t *testing.T) {
			var in schedules.Input
			err := decodeJSON("application/json", strings.NewReader(body), &in, true)
			var ae *apiError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, http.StatusBadRequest, ae.Status)
			assert.Empty(t, ae.Rule, ae.Message)
		})
	}
}
