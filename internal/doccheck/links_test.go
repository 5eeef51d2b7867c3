package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// root is the repository's top directory, seen from this package.
const root = "../.."

var (
	// inlineLink matches [text](target) and ![alt](target); the target ends at
	// the first space or closing parenthesis.
	inlineLink = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	codeSpan   = regexp.MustCompile("`[^`]*`")
)

// pages lists README.md and every markdown file under docs/.
func pages(t *testing.T) []string {
	t.Helper()
	files := []string{filepath.Join(root, "README.md")}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list docs: %v", err)
	}
	return files
}

// prose returns the lines of a markdown file outside fenced code blocks,
// with inline code spans blanked, keyed by line number.
func prose(src string) map[int]string {
	out := outsideCode(src)
	for n, line := range out {
		out[n] = codeSpan.ReplaceAllString(line, "``")
	}
	return out
}

// outsideCode returns the lines of a markdown file outside fenced code
// blocks, keyed by line number.
func outsideCode(src string) map[int]string {
	out := map[int]string{}
	fenced := false
	for i, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		out[i+1] = line
	}
	return out
}

// anchors returns the fragment of every heading of a markdown file, as
// GitHub makes them: lower case, punctuation dropped, spaces as hyphens,
// and -1, -2, ... for repeats.
func anchors(src string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	lines := outsideCode(src)
	for n := 1; n <= len(strings.Split(src, "\n")); n++ {
		line, ok := lines[n]
		if !ok || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			out[slug+"-"+itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

// headingsOf reads a page's headings once.
func headingsOf(t *testing.T, cache map[string]map[string]bool, path string) map[string]bool {
	t.Helper()
	if h, ok := cache[path]; ok {
		return h
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	h := anchors(string(src))
	cache[path] = h
	return h
}

func TestRelativeLinksResolve(t *testing.T) {
	cache := map[string]map[string]bool{}
	links := 0
	for _, page := range pages(t) {
		src, err := os.ReadFile(page)
		if err != nil {
			t.Fatalf("read %s: %v", page, err)
		}
		for n, line := range prose(string(src)) {
			for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				links++
				file, frag, _ := strings.Cut(target, "#")
				path := page
				if file != "" {
					path = filepath.Join(filepath.Dir(page), filepath.FromSlash(file))
				}
				rel, _ := filepath.Rel(root, page)
				info, err := os.Stat(path)
				if err != nil {
					t.Errorf("%s:%d: link %q: no such file", rel, n, target)
					continue
				}
				if frag == "" {
					continue
				}
				if info.IsDir() || !strings.HasSuffix(path, ".md") {
					t.Errorf("%s:%d: link %q: a fragment on something that is not a markdown page", rel, n, target)
					continue
				}
				if !headingsOf(t, cache, path)[frag] {
					t.Errorf("%s:%d: link %q: no heading #%s in %s", rel, n, target, frag, filepath.Base(path))
				}
			}
		}
	}
	if links < 50 {
		t.Errorf("found %d relative links; the pages link each other far more, so the link pattern is broken", links)
	}
}

func TestAnchorsFollowGitHub(t *testing.T) {
	got := anchors("# Top\n## Versions, canaries and rollbacks\n## Isolation: what is guaranteed and what is not\n" +
		"## The `parley` command\n```\n# not a heading\n```\n## Top\n")
	for _, want := range []string{"top", "versions-canaries-and-rollbacks",
		"isolation-what-is-guaranteed-and-what-is-not", "the-parley-command", "top-1"} {
		if !got[want] {
			t.Errorf("anchor %q missing from %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Errorf("a line in a code block was taken for a heading")
	}
}
