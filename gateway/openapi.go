package gateway

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/docs"
)

// Route is one method and path the server answers, the path written as the
// router takes it (":name" for a segment, "*name" for the rest of the path).
type Route struct {
	Method string
	Path   string
}

// Routes lists every route the server answers, for checks that the API's
// description covers them.
func (s *Server) Routes() []Route {
	info := s.engine.Routes()
	out := make([]Route, 0, len(info))
	for _, r := range info {
		out = append(out, Route{Method: r.Method, Path: r.Path})
	}
	return out
}

// openAPI answers GET /v1/openapi.json with the OpenAPI description of the
// API, converted from docs/openapi.yaml once, when the server is built. It
// needs no key: it describes the API and holds no data.
func (s *Server) openAPI() handlerFunc {
	body, err := docs.OpenAPIJSON()
	if err != nil {
		s.log.Error("the OpenAPI description could not be converted; GET /v1/openapi.json answers 500", "err", err)
	}
	return func(c *gin.Context) error {
		if err != nil {
			return err
		}
		c.Data(http.StatusOK, "application/json; charset=utf-8", body)
		return nil
	}
}
