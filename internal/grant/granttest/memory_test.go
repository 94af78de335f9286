package granttest

import (
	"testing"

	"example.com/signin/internal/grant"
)

func TestMemory(t *testing.T) {
	Run(t, func(*testing.T) grant.Store { return &Memory{} },
		func(_ *testing.T, st grant.Store, sub string) { st.(*Memory).Damage(sub) })
}
