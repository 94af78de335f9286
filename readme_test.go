package signin_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
