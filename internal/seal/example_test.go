package seal_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"example.com/signin/internal/seal"
)

// A record's tokens are sealed for their user when written and opened when
// read; a record written before sealing existed still reads, and is sealed
// when it is next written.
func ExampleKeyring() {
	dir, err := os.MkdirTemp("", "credentials")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	keys, err := seal.LoadKeys(os.Getenv, filepath.Join(dir, seal.DefaultKeyFileName), nil)
	if err != nil {
		log.Fatal(err)
	}

	const sub = "110169484474386276334"
	stored, err := keys.Seal(sub, "1//0g-refresh-token")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(seal.IsSealed(stored), seal.KeyID(stored) == keys.Newest())

	token, err := keys.Open(sub, stored)
	fmt.Println(token, err)

	legacy := "1//0g-written-before-sealing"
	token, err = keys.Open(sub, legacy)
	fmt.Println(token, err, seal.IsSealed(legacy))
	// Output:
	// true true
	// 1//0g-refresh-token <nil>
	// 1//0g-written-before-sealing <nil> false
}
