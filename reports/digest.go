package reports

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// digestCode lists what produces a report: the Go files of the catalog, the
// harness, the scenarios, the rendering and the command; everything under
// fixtures/ (histories, planted bugs, the premise profile); the waivers; and
// the module files that pin the SDK and the server.
var (
	digestGoTrees = []string{"criteria", "harness", "scenarios", "reports", "cmd"}
	digestTrees   = []string{"fixtures"}
	digestFiles   = []string{"go.mod", "go.sum", WaiverFile}
)

// CodeDigest is a SHA-256 over the files that produce a report, in the
// module at root: the path and content of each, in path order. report.json
// records it, and a unit test compares the committed report's digest with
// the tree's, so that a report cannot outlive the code it describes.
func CodeDigest(root string) (string, error) {
	var paths []string
	add := func(tree string, goOnly bool) error {
		return filepath.WalkDir(filepath.Join(root, tree), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && (!goOnly || strings.HasSuffix(p, ".go")) {
				paths = append(paths, p)
			}
			return nil
		})
	}
	for _, t := range digestGoTrees {
		if err := add(t, true); err != nil {
			return "", fmt.Errorf("code digest: %w", err)
		}
	}
	for _, t := range digestTrees {
		if err := add(t, false); err != nil {
			return "", fmt.Errorf("code digest: %w", err)
		}
	}
	for _, f := range digestFiles {
		paths = append(paths, filepath.Join(root, filepath.FromSlash(f)))
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("code digest: %w", err)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(rel), len(b))
		h.Write(b)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
