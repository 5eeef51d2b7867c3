package alexa

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/channels"
)

// envelope is the part of Alexa's request JSON Parley reads.
type envelope struct {
	Version string   `json:"version"`
	Session *session `json:"session"`
	Context struct {
		System struct {
			Application application `json:"application"`
			User        struct {
				UserID string `json:"userId"`
			} `json:"user"`
			APIEndpoint    string `json:"apiEndpoint"`
			APIAccessToken string `json:"apiAccessToken"`
		} `json:"System"`
	} `json:"context"`
	Request request `json:"request"`
}

type application struct {
	ApplicationID string `json:"applicationId"`
}

type session struct {
	New         bool        `json:"new"`
	SessionID   string      `json:"sessionId"`
	Application application `json:"application"`
	User        struct {
		UserID string `json:"userId"`
	} `json:"user"`
}

type request struct {
	Type        string          `json:"type"`
	RequestID   string          `json:"requestId"`
	Timestamp   json.RawMessage `json:"timestamp"`
	Locale      string          `json:"locale"`
	DialogState string          `json:"dialogState"`
	Reason      string          `json:"reason"`
	Intent      json.RawMessage `json:"intent"`
}

// parsed is a request as Parse decoded it, kept in channels.Request.Parsed
// for Render, RenderError and StreamRequest.
type parsed struct {
	env envelope
	// intent is the IntentRequest's intent; nil for other request types
	// or when it does not decode.
	intent *intent
}

// decode decodes an Alexa request body.
func decode(body []byte) (*parsed, error) {
	p := &parsed{}
	if err := json.Unmarshal(body, &p.env); err != nil {
		return nil, err
	}
	if p.env.Request.Type == "IntentRequest" {
		var in intent
		if json.Unmarshal(p.env.Request.Intent, &in) == nil {
			p.intent = &in
		}
	}
	return p, nil
}

// parsedOf returns what Parse decoded from req, decoding the body again
// only for a request Parse did not see.
func parsedOf(req *channels.Request) *parsed {
	if p, ok := req.Parsed.(*parsed); ok {
		return p
	}
	p, err := decode(req.Body)
	if err != nil {
		return &parsed{}
	}
	return p
}

type intent struct {
	Name               string          `json:"name"`
	ConfirmationStatus string          `json:"confirmationStatus"`
	Slots              map[string]slot `json:"slots"`
}

type slot struct {
	Name        string       `json:"name"`
	Value       string       `json:"value"`
	Resolutions *resolutions `json:"resolutions"`
	SlotValue   *slotValue   `json:"slotValue"`
}

// slotValue is the newer form of a slot's value, which can hold several
// values for multiple-value slots.
type slotValue struct {
	Type        string       `json:"type"`
	Value       string       `json:"value"`
	Resolutions *resolutions `json:"resolutions"`
	Values      []slotValue  `json:"values"`
}

type resolutions struct {
	PerAuthority []struct {
		Authority string `json:"authority"`
		Status    struct {
			Code string `json:"code"`
		} `json:"status"`
		Values []struct {
			Value struct {
				Name string `json:"name"`
				ID   string `json:"id"`
			} `json:"value"`
		} `json:"values"`
	} `json:"resolutionsPerAuthority"`
}

// resolved is the first entity a value resolved to.
func (r *resolutions) resolved() (name, id string, ok bool) {
	if r == nil {
		return "", "", false
	}
	for _, a := range r.PerAuthority {
		if a.Status.Code == "ER_SUCCESS_MATCH" && len(a.Values) > 0 {
			return a.Values[0].Value.Name, a.Values[0].Value.ID, true
		}
	}
	return "", "", false
}

// timestamp reads request.timestamp: ISO 8601, or (older skill events)
// milliseconds since the epoch.
func (r *request) timestamp() (time.Time, bool) {
	var s string
	if err := json.Unmarshal(r.Timestamp, &s); err == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		return t, err == nil
	}
	var ms int64
	if err := json.Unmarshal(r.Timestamp, &ms); err == nil {
		return time.UnixMilli(ms), true
	}
	if f, err := strconv.ParseFloat(string(r.Timestamp), 64); err == nil {
		return time.UnixMilli(int64(f)), true
	}
	return time.Time{}, false
}

// slotValues flattens an intent's slots: the value said, or the entity it
// resolved to with "<slot>.id" and "<slot>.spoken"; several values of a
// multiple-value slot are joined with ", ".
func (in *intent) slotValues() map[string]string {
	out := make(map[string]string, len(in.Slots))
	names := make([]string, 0, len(in.Slots))
	for name := range in.Slots {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, key := range names {
		s := in.Slots[key]
		name := s.Name
		if name == "" {
			name = key
		}
		spoken, res := s.Value, s.Resolutions
		if s.SlotValue != nil {
			if len(s.SlotValue.Values) > 0 {
				spoken, res = joinValues(s.SlotValue.Values), nil
				if names, ok := joinResolved(s.SlotValue.Values); ok {
					out[name] = names
					if names != spoken {
						out[name+".spoken"] = spoken
					}
					continue
				}
			} else {
				if s.SlotValue.Value != "" {
					spoken = s.SlotValue.Value
				}
				if s.SlotValue.Resolutions != nil {
					res = s.SlotValue.Resolutions
				}
			}
		}
		if spoken == "" {
			continue
		}
		out[name] = spoken
		if rname, id, ok := res.resolved(); ok {
			out[name] = rname
			if id != "" {
				out[name+".id"] = id
			}
			if rname != spoken {
				out[name+".spoken"] = spoken
			}
		}
	}
	return out
}

func joinValues(vs []slotValue) string {
	parts := make([]string, 0, len(vs))
	for _, v := range vs {
		if v.Value != "" {
			parts = append(parts, v.Value)
		}
	}
	return strings.Join(parts, ", ")
}

// joinResolved joins the entity names when every value resolved to one.
func joinResolved(vs []slotValue) (string, bool) {
	parts := make([]string, 0, len(vs))
	for _, v := range vs {
		name, _, ok := v.Resolutions.resolved()
		if !ok {
			return "", false
		}
		parts = append(parts, name)
	}
	return strings.Join(parts, ", "), len(parts) > 0
}
