package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fileMarker is the comment that says the fenced block after it is a
// file of the repository, shown whole: <!-- file: examples/x/y.lua -->.
var fileMarker = regexp.MustCompile(`^<!-- file: (\S+) -->$`)

// TestQuotedFilesMatch: a fenced block marked as a repository file shows
// that file as it is, so that an example walked through in the docs is the
// one that is tested.
func TestQuotedFilesMatch(t *testing.T) {
	quoted := 0
	for _, page := range pages(t) {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(raw), "\n")
		for i, line := range lines {
			m := fileMarker.FindStringSubmatch(strings.TrimSpace(line))
			if m == nil {
				continue
			}
			quoted++
			block, ok := fencedAfter(lines, i+1)
			if !ok {
				t.Errorf("%s:%d: no fenced block after the marker of %s", page, i+1, m[1])
				continue
			}
			want, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(m[1])))
			if err != nil {
				t.Errorf("%s:%d: %v", page, i+1, err)
				continue
			}
			if block != string(want) {
				t.Errorf("%s:%d: the block differs from %s; copy the file into it again", page, i+1, m[1])
			}
		}
	}
	if quoted == 0 {
		t.Fatal("no quoted file found; the handlers docs quote examples/faqbot")
	}
}

// fencedAfter returns the content of the fenced block that starts on
// lines[i], each line ending with a newline.
func fencedAfter(lines []string, i int) (string, bool) {
	if i >= len(lines) || !strings.HasPrefix(lines[i], "```") {
		return "", false
	}
	var b strings.Builder
	for _, line := range lines[i+1:] {
		if strings.HasPrefix(line, "```") {
			return b.String(), true
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return "", false
}
