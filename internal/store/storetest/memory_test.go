package storetest

import (
	"testing"

	"example.com/signin/internal/store"
)

func TestMemory(t *testing.T) {
	Run(t, func(*testing.T) store.Store { return &Memory{} })
}
