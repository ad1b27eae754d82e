package reports

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/durabench/durabench/criteria"
)

// WaiverFile is the committed list of fail-close items the gate lets
// through while they are not measured yet.
const WaiverFile = "reports/waivers.yaml"

// Waiver lets the gate pass an applicable fail-close item that is not
// measured, or whose negative control did not run. It never excuses an item
// that was measured and rates 2 or less, nor a control that passed. The
// report prints every waiver at its top.
type Waiver struct {
	Item   string `yaml:"item"`
	Reason string `yaml:"reason"`
}

// LoadWaivers reads path; a missing file means no waivers.
func LoadWaivers(path string, items []criteria.Item) ([]Waiver, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	w, err := ParseWaivers(b, items)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return w, nil
}

// ParseWaivers decodes a waiver file and checks every entry against the
// catalog: the item must be a fail-close item, named once, with a reason.
// Errors name the entry, the field and the rule.
func ParseWaivers(data []byte, items []criteria.Item) ([]Waiver, error) {
	var doc struct {
		Waivers []Waiver `yaml:"waivers"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("waivers: %w", err)
	}
	failClose := map[string]bool{}
	for _, it := range items {
		failClose[it.ID] = it.FailClose != criteria.FailCloseNever
	}
	seen := map[string]bool{}
	for i, w := range doc.Waivers {
		switch fc, known := failClose[w.Item]; {
		case !known:
			return nil, fmt.Errorf("waiver %d: field item: %q is not an item of the catalog", i+1, w.Item)
		case !fc:
			return nil, fmt.Errorf("waiver %d: field item: %s is not fail-close; only fail-close items are gated and may be waived", i+1, w.Item)
		case seen[w.Item]:
			return nil, fmt.Errorf("waiver %d: field item: %s is waived twice", i+1, w.Item)
		case strings.TrimSpace(w.Reason) == "":
			return nil, fmt.Errorf("waiver %d (%s): field reason: must say why the item is not measured and what will measure it", i+1, w.Item)
		}
		seen[w.Item] = true
	}
	return doc.Waivers, nil
}

func waived(ws []Waiver, item string) bool {
	for _, w := range ws {
		if w.Item == item {
			return true
		}
	}
	return false
}
