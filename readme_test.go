package signin_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// markdownLink matches the target of a Markdown link or image.
var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// parentPath matches a path that starts in the parent directory.
var parentPath = regexp.MustCompile("(^|[\\s(`'\"])\\.\\./\\S*")

// TestREADMELinks: everything the README points at is in a clone of this
// repository (not in a folder beside it that a user does not have), and it
// shows what the pages look like.
func TestREADMELinks(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	if m := parentPath.FindString(readme); m != "" {
		t.Errorf("README.md points outside the repository: %q", m)
	}
	images := 0
	for _, m := range markdownLink.FindAllStringSubmatch(readme, -1) {
		target := m[1]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		target, _, _ = strings.Cut(target, "#")
		if _, err := os.Stat(filepath.FromSlash(target)); err != nil {
			t.Errorf("README.md links to %s, which is not in the repository: %v", m[1], err)
		}
		if strings.HasPrefix(target, "docs/") && strings.HasSuffix(target, ".png") {
			images++
		}
	}
	if images < 2 {
		t.Errorf("README.md shows %d screenshots from docs/, want the two pages", images)
	}
}

// TestDocsLinks: the reference pages under docs/ that the README links to
// point at files (and headings) that exist, so moving a section does not
// leave a dead link behind.
func TestDocsLinks(t *testing.T) {
	pages, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, "README.md")
	for _, page := range pages {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range markdownLink.FindAllStringSubmatch(string(data), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), filepath.FromSlash(file))
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s links to %s, which is not in the repository: %v", page, target, err)
				continue
			}
			if anchor == "" || !strings.HasSuffix(path, ".md") {
				continue
			}
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(headingAnchors(string(text)), anchor) {
				t.Errorf("%s links to %s, but %s has no heading with anchor #%s", page, target, path, anchor)
			}
		}
	}
}

// headingAnchors returns the anchors GitHub gives the Markdown headings of
// text: lower case, punctuation dropped, spaces as hyphens.
func headingAnchors(text string) []string {
	var anchors []string
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		anchors = append(anchors, b.String())
	}
	return anchors
}
