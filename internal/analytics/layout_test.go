package analytics

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the package on the storage side of the layering:
// go-redis yes, never gin, gopher-lua or the engine (which brings the sandbox).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/parleyhq/parley/internal/analytics").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/gin-gonic/", "github.com/yuin/gopher-lua", "github.com/parleyhq/parley/engine",
			"github.com/parleyhq/parley/sandbox", "github.com/parleyhq/parley/gateway"} {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("analytics depends on %s", dep)
			}
		}
	}
}
