package web

import (
	"bytes"
	"compress/gzip"
	"regexp"
	"testing"
)

// TestWidgetSize holds the widget under 30 KB gzipped.
func TestWidgetSize(t *testing.T) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(Widget); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len() >= 30<<10 {
		t.Fatalf("widget.js is %d bytes gzipped, want under 30 KB", buf.Len())
	}
	t.Logf("widget.js: %d bytes, %d gzipped", len(Widget), buf.Len())
}

// TestWidgetWritesNoHTML: the widget never parses text as HTML or code.
func TestWidgetWritesNoHTML(t *testing.T) {
	bad := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\("on`)
	if m := bad.Find(Widget); m != nil {
		t.Fatalf("widget.js uses %s", m)
	}
}
