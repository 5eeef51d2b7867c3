package main

import (
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=..."; without
// it the module's build information names the version.
var version = ""

// versionInfo is what parley version prints.
type versionInfo struct {
	Version string `json:"version"`
	// Revision, Time and Modified describe the source's commit, when the
	// binary was built from a checkout.
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"time,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go_version"`
}

// buildVersion reads the version from the build information.
func buildVersion() versionInfo {
	v := versionInfo{Version: version}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if v.Version == "" {
			v.Version = "unknown"
		}
		return v
	}
	v.GoVersion = info.GoVersion
	if v.Version == "" {
		v.Version = info.Main.Version
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func newVersionCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print parley's version and the commit it was built from",
		Args:  argsBetween(0, 0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			v := buildVersion()
			if c.json {
				return c.printJSON(v)
			}
			c.textf("parley %s", v.Version)
			if v.Revision != "" {
				c.textf(" (%s", v.Revision)
				if v.Time != "" {
					c.textf(", %s", v.Time)
				}
				if v.Modified {
					c.textf(", modified")
				}
				c.textf(")")
			}
			if v.GoVersion != "" {
				c.textf(" %s", v.GoVersion)
			}
			c.textf("\n")
			return nil
		},
	}
	c.addJSONFlag(cmd)
	return cmd
}
