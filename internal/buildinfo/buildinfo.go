// Package buildinfo says which wsgate this is: the version the build was
// given (make sets it from git), else what Go recorded of the module and
// its VCS state. It owns nothing else.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// version is set at link time: -ldflags "-X github.com/wsgate/wsgate/internal/buildinfo.version=v1.2.3".
var version string

// Info is what is known about this build.
type Info struct {
	Version   string // the given version, the module's, or "devel"
	Revision  string // VCS revision, "" if unknown
	Modified  bool   // the working tree had changes
	GoVersion string
}

var (
	once sync.Once
	info Info
)

// Get returns this build's Info.
func Get() Info {
	once.Do(func() {
		info = Info{Version: version, GoVersion: runtime.Version()}
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			return
		}
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
		if info.Version == "" {
			info.Version = "devel"
		}
	})
	return info
}

// String is the one-line description: "wsgate v1.2.3 (rev 0123abc, modified) go1.26.8 linux/amd64".
func (i Info) String() string {
	rev := ""
	if i.Revision != "" {
		r := i.Revision
		if len(r) > 12 {
			r = r[:12]
		}
		rev = " (rev " + r
		if i.Modified {
			rev += ", modified"
		}
		rev += ")"
	}
	return fmt.Sprintf("wsgate %s%s %s %s/%s", i.Version, rev, i.GoVersion, runtime.GOOS, runtime.GOARCH)
}
