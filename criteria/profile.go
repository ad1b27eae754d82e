package criteria

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Profile holds the premise parameters recorded at the top of every report.
// They decide, among other things, whether VR-01 is fail-close.
type Profile struct {
	Name        string `yaml:"name"`
	Duration    string `yaml:"duration"`     // ms-s | min-h | days-months
	SideEffects string `yaml:"side_effects"` // read-only | restricted-writes | irreversible-financial
	Deployment  string `yaml:"deployment"`   // self-hosted-dev | self-hosted | managed | serverless | embedded-library
	Scale       string `yaml:"scale"`        // ~100 | ~10K | 100K+
	Determinism string `yaml:"determinism"`  // deterministic | includes-llm
	Language    string `yaml:"language"`     // go
}

// ProfileField describes one premise parameter and its allowed values, in
// both languages, for validation and for the report.
type ProfileField struct {
	Key     string
	NameEN  string
	NameJA  string
	Allowed map[string][2]string // value -> {English, Japanese}
	get     func(*Profile) string
}

// ProfileFields lists the premise parameters in report order.
var ProfileFields = []ProfileField{
	{"duration", "Duration", "実行時間", map[string][2]string{
		"ms-s": {"milliseconds to seconds", "ミリ秒〜秒"}, "min-h": {"minutes to hours", "分〜時間"}, "days-months": {"days to months", "日〜月"},
	}, func(p *Profile) string { return p.Duration }},
	{"side_effects", "Side effects", "副作用", map[string][2]string{
		"read-only": {"read-only", "読み取りのみ"}, "restricted-writes": {"restricted writes", "制限付き書き込み"},
		"irreversible-financial": {"irreversible financial writes", "不可逆な金銭的書き込み"},
	}, func(p *Profile) string { return p.SideEffects }},
	{"deployment", "Deployment", "デプロイ", map[string][2]string{
		"self-hosted-dev": {"self-hosted (dev mode)", "セルフホスト（開発モード）"}, "self-hosted": {"self-hosted", "セルフホスト"},
		"managed": {"managed", "マネージド"}, "serverless": {"serverless", "サーバーレス"}, "embedded-library": {"embedded library", "組み込みライブラリ"},
	}, func(p *Profile) string { return p.Deployment }},
	{"scale", "Scale", "スケール", map[string][2]string{
		"~100": {"about 100 concurrent workflows", "同時実行 約100"}, "~10K": {"about 10K concurrent workflows", "同時実行 約1万"},
		"100K+": {"100K+ concurrent workflows", "同時実行 10万以上"},
	}, func(p *Profile) string { return p.Scale }},
	{"determinism", "Determinism", "決定性", map[string][2]string{
		"deterministic": {"deterministic only", "決定的のみ"}, "includes-llm": {"includes LLM or external API decisions", "LLM判断・外部APIを含む"},
	}, func(p *Profile) string { return p.Determinism }},
	{"language", "Language", "言語", map[string][2]string{
		"go": {"Go", "Go"},
	}, func(p *Profile) string { return p.Language }},
}

// Value returns the raw value of f in p.
func (f ProfileField) Value(p Profile) string { return f.get(&p) }

// Validate names the first field whose value is missing or not allowed.
func (p Profile) Validate() error {
	for _, f := range ProfileFields {
		v := f.get(&p)
		if _, ok := f.Allowed[v]; !ok {
			allowed := make([]string, 0, len(f.Allowed))
			for k := range f.Allowed {
				allowed = append(allowed, k)
			}
			slices.Sort(allowed)
			return fmt.Errorf("profile field %s: %q is not one of %v", f.Key, v, allowed)
		}
	}
	return nil
}

// FailCloseApplies tells whether an item with rule fc caps the overall rating
// under this premise.
func (p Profile) FailCloseApplies(fc FailClose) bool {
	switch fc {
	case FailCloseAlways:
		return true
	case FailCloseLongRunning:
		return p.Duration != "ms-s"
	}
	return false
}

// ParseProfile decodes and validates a YAML profile holding one document;
// unknown keys are errors. On error the returned profile is the zero value.
func ParseProfile(b []byte) (Profile, error) {
	var p Profile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return Profile{}, errors.New("profile: empty document")
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			if keys := nonScalarKeys(b); keys != "" {
				return Profile{}, fmt.Errorf("profile field %s: want a plain value: %w", keys, err)
			}
		}
		return Profile{}, fmt.Errorf("profile: %w", err)
	}
	// A second document would otherwise be ignored without a word.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Profile{}, errors.New("profile: more than one YAML document")
	}
	if err := p.Validate(); err != nil {
		return Profile{}, err
	}
	return p, nil
}

// nonScalarKeys lists the keys whose values are not plain scalars, because
// yaml's type errors give only a line number. It returns "" when b is not a
// mapping of string keys or every value is a scalar.
func nonScalarKeys(b []byte) string {
	var raw map[string]yaml.Node
	if yaml.Unmarshal(b, &raw) != nil {
		return ""
	}
	var keys []string
	for k, n := range raw {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = *n.Alias
		}
		if n.Kind != yaml.ScalarNode {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ")
}

// LoadProfile reads a YAML profile file.
func LoadProfile(path string) (Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Profile{}, fmt.Errorf("profile: %w", err)
	}
	p, err := ParseProfile(b)
	if err != nil {
		return Profile{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}
