package web

import (
	"mime"
	"strings"

	"github.com/parleyhq/parley/channels"
)

// WantsEvents implements [channels.EventStreamer]: a caller whose Accept
// header names text/event-stream gets the answer as server-sent events,
// the reply's text as it is written ("delta" events with {"text": "..."}),
// then the usual answer ("reply"), then "done".
func (*Adapter) WantsEvents(req *channels.Request) bool {
	for _, v := range req.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil && mt == "text/event-stream" && params["q"] != "0" {
				return true
			}
		}
	}
	return false
}

var _ channels.EventStreamer = (*Adapter)(nil)
