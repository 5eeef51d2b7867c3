package voice

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/xmlx"
)

// MaxSSMLBytes bounds a spoken document; the platforms refuse longer ones
// (Alexa's output speech is limited to 8000 characters).
const MaxSSMLBytes = 8000

// maxSSMLDepth bounds element nesting.
const maxSSMLDepth = 16

// ssmlElements are the elements at least one of the voice platforms speaks:
// the SSML 1.1 set, the Amazon extensions (Alexa, Polly for Twilio and Lex)
// and Google's (Dialogflow). Anything else is refused, since a platform that
// meets an element it does not know rejects the whole answer.
var ssmlElements = map[string]bool{
	"speak": true, "p": true, "s": true, "break": true, "emphasis": true, "prosody": true,
	"say-as": true, "phoneme": true, "sub": true, "audio": true, "lang": true, "voice": true,
	"w": true, "mark": true, "desc": true, "par": true, "seq": true, "media": true,
	"amazon:effect": true, "amazon:emotion": true, "amazon:domain": true,
	"amazon:auto-breaths": true, "amazon:breath": true,
}

// InvalidSSMLError is SSML refused by [ValidateSSML].
type InvalidSSMLError struct{ Reason string }

func (e *InvalidSSMLError) Error() string { return "invalid SSML: " + e.Reason }

func invalidSSML(format string, args ...any) error {
	return &InvalidSSMLError{Reason: fmt.Sprintf(format, args...)}
}

// EscapeText escapes s for use as SSML (or any XML) character data; a
// character XML cannot hold is spoken as a pause (a space).
func EscapeText(s string) string {
	return xmlx.EscapeText(s, ' ')
}

// TextToSSML is the SSML document that speaks text as it is.
func TextToSSML(text string) string {
	return "<speak>" + EscapeText(text) + "</speak>"
}

// ValidateSSML checks that doc is one well-formed <speak> element of at most
// [MaxSSMLBytes], using only elements the voice platforms know, with no
// DOCTYPE, processing instruction or entity beyond XML's own.
func ValidateSSML(doc string) error {
	_, err := parseSSML(doc)
	return err
}

// parseSSML validates doc and returns its text content.
func parseSSML(doc string) (string, error) {
	if len(doc) > MaxSSMLBytes {
		return "", invalidSSML("longer than %d bytes", MaxSSMLBytes)
	}
	if !utf8.ValidString(doc) {
		return "", invalidSSML("not valid UTF-8")
	}
	dec := xml.NewDecoder(strings.NewReader(doc))
	dec.Strict = true
	var text strings.Builder
	var open []string // RawToken keeps prefixes as written; nesting is checked here
	roots := 0
	for {
		depth := len(open)
		tok, err := dec.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", invalidSSML("%v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if t.Name.Space != "" {
				name = t.Name.Space + ":" + name
			}
			switch {
			case depth == 0 && name != "speak":
				return "", invalidSSML("the root element must be <speak>, not <%s>", name)
			case depth == 0 && roots > 0:
				return "", invalidSSML("more than one root element")
			case depth > 0 && name == "speak":
				return "", invalidSSML("<speak> inside <speak>")
			case !ssmlElements[name]:
				return "", invalidSSML("unsupported element <%s>", name)
			case depth >= maxSSMLDepth:
				return "", invalidSSML("elements nested deeper than %d", maxSSMLDepth)
			}
			if depth == 0 {
				roots++
			}
			open = append(open, name)
			if name == "break" || name == "s" || name == "p" {
				text.WriteByte(' ')
			}
		case xml.EndElement:
			name := t.Name.Local
			if t.Name.Space != "" {
				name = t.Name.Space + ":" + name
			}
			if depth == 0 || open[depth-1] != name {
				return "", invalidSSML("unexpected </%s>", name)
			}
			open = open[:depth-1]
		case xml.CharData:
			if depth == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return "", invalidSSML("text outside <speak>")
				}
				continue
			}
			text.Write(t)
		case xml.ProcInst:
			if t.Target != "xml" || depth > 0 || roots > 0 {
				return "", invalidSSML("processing instruction <?%s?>", t.Target)
			}
		case xml.Directive:
			return "", invalidSSML("directives such as DOCTYPE are not allowed")
		case xml.Comment:
		}
	}
	if len(open) > 0 {
		return "", invalidSSML("<%s> is not closed", open[len(open)-1])
	}
	if roots == 0 {
		return "", invalidSSML("no <speak> element")
	}
	return strings.Join(strings.Fields(text.String()), " "), nil
}

// Inner is the content of a valid SSML document without the <speak> element
// and any XML declaration, for platforms that take SSML inside their own
// element (Twilio's <Say>).
func Inner(doc string) string {
	s := strings.TrimSpace(doc)
	if strings.HasPrefix(s, "<?") {
		if i := strings.Index(s, "?>"); i >= 0 {
			s = strings.TrimSpace(s[i+2:])
		}
	}
	open := strings.IndexByte(s, '>')
	if open < 0 || !strings.HasPrefix(s, "<speak") {
		return s
	}
	if s[open-1] == '/' { // <speak/>
		return ""
	}
	end := strings.LastIndex(s, "</speak")
	if end < open {
		return ""
	}
	return s[open+1 : end]
}
