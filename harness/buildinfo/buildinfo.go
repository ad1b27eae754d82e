// Package buildinfo reads the versions of Go, the Temporal SDK and the
// Temporal server that the running binary was built with, so that reports
// state what was measured rather than what a constant claims.
package buildinfo

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
)

// Module paths whose versions reports show.
const (
	SDKModule    = "go.temporal.io/sdk"
	ServerModule = "go.temporal.io/server"
)

// Versions of the running binary.
type Versions struct {
	Go        string
	Durabench string
	SDK       string // "" when the binary does not link the SDK
	Server    string // "" when the binary does not link the server
}

// Read returns the versions recorded in the binary's build information.
func Read() Versions {
	v := Versions{Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Durabench = bi.Main.Version
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		switch d.Path {
		case SDKModule:
			v.SDK = d.Version
		case ServerModule:
			v.Server = d.Version
		}
	}
	return v
}

// ModuleRoot is the nearest directory at or above dir that holds go.mod.
func ModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod at or above the working directory: run durabench from its checkout")
		}
		dir = parent
	}
}
