package gateway

import (
	"net/http/pprof"
	"strings"

	"github.com/gin-gonic/gin"
)

// pprofRoute is the route of Go's runtime profiles, when Config.Pprof is set.
const pprofRoute = "/debug/pprof/*name"

// pprof serves net/http/pprof's handlers: the index at /debug/pprof/, the
// CPU profile, execution trace, command line and symbol lookup by name, and
// every runtime profile (heap, allocs, goroutine, mutex, block, ...) by the
// index's dispatch on the rest of the path. The admin key is checked
// before it.
func (s *Server) pprof(c *gin.Context) {
	switch strings.TrimPrefix(c.Param("name"), "/") {
	case "cmdline":
		pprof.Cmdline(c.Writer, c.Request)
	case "profile":
		pprof.Profile(c.Writer, c.Request)
	case "symbol":
		pprof.Symbol(c.Writer, c.Request)
	case "trace":
		pprof.Trace(c.Writer, c.Request)
	default:
		pprof.Index(c.Writer, c.Request)
	}
}

// pprofRoutes adds the profiles' routes behind the admin key.
func (s *Server) pprofRoutes(r gin.IRouter) {
	guard := s.handle(s.requireAdmin)
	r.GET(pprofRoute, guard, s.pprof)
	r.POST(pprofRoute, guard, s.pprof) // symbol lookups post their addresses
}
