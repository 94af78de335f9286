package signin

import (
	"embed"
	"io/fs"
)

// assets holds the pages and static files. It lives at the module root
// because //go:embed only reaches files at or below the embedding package's
// directory, and templates/ and static/ sit at the root so that designers
// find them where they expect.
//
//go:embed templates static
var assets embed.FS

// Templates returns the embedded html/template files (templates/*.html),
// rooted at the templates directory.
func Templates() fs.FS { return sub("templates") }

// Static returns the embedded static assets (static/*: JavaScript, CSS,
// images), rooted at the static directory.
func Static() fs.FS { return sub("static") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(assets, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path, and dir is a constant
		// known to be embedded.
		panic(err)
	}
	return f
}
