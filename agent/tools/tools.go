// Package tools holds what an agent run may do besides calling the LLM:
// search over a small local corpus, fetch a document, notify the owner, and
// the restricted operations (delete data, send mail, purchase, change
// permissions) that a background run may perform only when the user
// approved them. Every operation passes the Policy first.
package tools

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
)

// Operations an agent run can request.
const (
	OpSearch            = "search"
	OpFetch             = "fetch"
	OpNotify            = "notify"
	OpDeleteData        = "delete_data"
	OpSendEmail         = "send_email"
	OpMakePurchase      = "make_purchase"
	OpModifyPermissions = "modify_permissions"
)

// Restricted are the operations a background run may not perform unless
// the user approved them.
var Restricted = []string{OpDeleteData, OpSendEmail, OpMakePurchase, OpModifyPermissions}

// Deliverable are the operations a schedule can ask to run with its result.
var Deliverable = append([]string{OpNotify}, Restricted...)

// IsRestricted reports whether op needs approval in a background run.
func IsRestricted(op string) bool { return slices.Contains(Restricted, op) }

// Price is what each tool call costs in USD, charged to the run's budget
// before the call.
var Price = map[string]float64{
	OpSearch: 0.002, OpFetch: 0.001, OpNotify: 0,
	OpDeleteData: 0, OpSendEmail: 0.0005, OpMakePurchase: 0, OpModifyPermissions: 0,
}

// RestrictedError is an operation the policy refused.
type RestrictedError struct{ Op string }

func (e *RestrictedError) Error() string {
	return fmt.Sprintf("restricted operation %q is not allowed in a background run without the user's approval; approve it on the schedule (approved_operations) or run it by hand", e.Op)
}

// Policy decides which operations a run may perform.
type Policy struct {
	Background bool     // no user is watching (every scheduled or triggered run)
	Approved   []string // restricted operations the user approved in advance
}

// Check refuses a restricted operation in a background run unless approved.
func (p Policy) Check(op string) error {
	if _, known := Price[op]; !known {
		return fmt.Errorf("unknown operation %q", op)
	}
	if p.Background && IsRestricted(op) && !slices.Contains(p.Approved, op) {
		return &RestrictedError{Op: op}
	}
	return nil
}

//go:embed corpus/*.md
var corpusFS embed.FS

// Doc is one document of the corpus.
type Doc struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Text  string `json:"text"`
}

// Hit is a search result.
type Hit struct {
	ID      string  `json:"id"`
	Title   string  `json:"title"`
	Snippet string  `json:"snippet"`
	Score   float64 `json:"score"`
}

// Corpus is a small document collection searched by BM25.
type Corpus struct {
	docs   []Doc
	terms  []map[string]int // term counts per document
	df     map[string]int   // documents containing a term
	avgLen float64
}

// DefaultCorpus is the corpus shipped with the agent.
func DefaultCorpus() (*Corpus, error) {
	entries, err := fs.Glob(corpusFS, "corpus/*.md")
	if err != nil {
		return nil, err
	}
	var docs []Doc
	for _, name := range entries {
		b, err := corpusFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		title, text, _ := strings.Cut(string(b), "\n")
		docs = append(docs, Doc{
			ID:    strings.TrimSuffix(path.Base(name), ".md"),
			Title: strings.TrimSpace(strings.TrimPrefix(title, "#")),
			Text:  strings.TrimSpace(text),
		})
	}
	return NewCorpus(docs), nil
}

// NewCorpus indexes docs.
func NewCorpus(docs []Doc) *Corpus {
	c := &Corpus{docs: docs, df: map[string]int{}}
	total := 0
	for _, d := range docs {
		counts := map[string]int{}
		for _, t := range tokenize(d.Title + " " + d.Text) {
			counts[t]++
			total++
		}
		for t := range counts {
			c.df[t]++
		}
		c.terms = append(c.terms, counts)
	}
	if len(docs) > 0 {
		c.avgLen = float64(total) / float64(len(docs))
	}
	return c
}

func tokenize(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// Search returns up to limit documents ranked by BM25 for query.
func (c *Corpus) Search(query string, limit int) []Hit {
	const k1, b = 1.2, 0.75
	n := float64(len(c.docs))
	var hits []Hit
	for i, d := range c.docs {
		docLen := 0
		for _, v := range c.terms[i] {
			docLen += v
		}
		score := 0.0
		for _, t := range tokenize(query) {
			tf := float64(c.terms[i][t])
			if tf == 0 {
				continue
			}
			idf := math.Log(1 + (n-float64(c.df[t])+0.5)/(float64(c.df[t])+0.5))
			score += idf * tf * (k1 + 1) / (tf + k1*(1-b+b*float64(docLen)/c.avgLen))
		}
		if score > 0 {
			hits = append(hits, Hit{ID: d.ID, Title: d.Title, Snippet: firstSentence(d.Text), Score: score})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].Score > hits[j].Score })
	if len(hits) > limit {
		hits = hits[:limit]
	}
	return hits
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

// ErrNoDocument is a fetch of an id the corpus does not hold.
var ErrNoDocument = errors.New("no such document")

// maxFetchBytes bounds what a fetch reads from the network.
const maxFetchBytes = 256 << 10

// Fetch returns a corpus document ("corpus:ID" or a bare id) or the body of
// an http(s) URL, at most maxFetchBytes of it.
func (c *Corpus) Fetch(ctx context.Context, client *http.Client, ref string) (string, error) {
	u, err := url.Parse(ref)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref, nil)
		if err != nil {
			return "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("fetch %s: HTTP %d", ref, resp.StatusCode)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBytes))
		return string(b), err
	}
	id := strings.TrimPrefix(ref, "corpus:")
	for _, d := range c.docs {
		if d.ID == id {
			return d.Title + "\n" + d.Text, nil
		}
	}
	return "", fmt.Errorf("%w: %q", ErrNoDocument, ref)
}
