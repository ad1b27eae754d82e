package devserver

import (
	"path/filepath"

	enumspb "go.temporal.io/api/enums/v1"
	persistencespb "go.temporal.io/server/api/persistence/v1"
	"go.temporal.io/server/common/config"
)

// archivalURIs are the filestore URIs of history and visibility archives
// under dir.
func archivalURIs(dir string) (history, visibility string) {
	return "file://" + filepath.Join(dir, "history"), "file://" + filepath.Join(dir, "visibility")
}

// archivalConfig enables the filestore archiver on the server when dir is
// set, and leaves archival disabled otherwise.
func archivalConfig(conf *config.Config, dir string) {
	if dir == "" {
		conf.Archival.History.State = "disabled"
		conf.Archival.Visibility.State = "disabled"
		conf.NamespaceDefaults.Archival.History.State = "disabled"
		conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
		return
	}
	fs := &config.FilestoreArchiver{FileMode: "0666", DirMode: "0766"}
	h, v := archivalURIs(dir)
	conf.Archival.History = config.HistoryArchival{State: "enabled", EnableRead: true, Provider: &config.HistoryArchiverProvider{Filestore: fs}}
	conf.Archival.Visibility = config.VisibilityArchival{State: "enabled", EnableRead: true, Provider: &config.VisibilityArchiverProvider{Filestore: fs}}
	conf.NamespaceDefaults.Archival.History = config.HistoryArchivalNamespaceDefaults{State: "enabled", URI: h}
	conf.NamespaceDefaults.Archival.Visibility = config.VisibilityArchivalNamespaceDefaults{State: "enabled", URI: v}
}

// enableArchival turns archival on for a namespace registered at start.
func enableArchival(c *persistencespb.NamespaceConfig, dir string) {
	h, v := archivalURIs(dir)
	c.HistoryArchivalState, c.HistoryArchivalUri = enumspb.ARCHIVAL_STATE_ENABLED, h
	c.VisibilityArchivalState, c.VisibilityArchivalUri = enumspb.ARCHIVAL_STATE_ENABLED, v
}
