package auth

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
)

// rsaPublicKeys returns the RSA public keys of a JWKS that parseJWKS
// cleaned (so every key in it passed usableRSAKey), by kid, parsed once per
// fetched set: ID tokens (verifySigned) and Security Event Tokens are
// checked against them.
func rsaPublicKeys(clean []byte) map[string]*rsa.PublicKey {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if json.Unmarshal(clean, &set) != nil {
		return nil
	}
	keys := make(map[string]*rsa.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		n, err := base64.RawURLEncoding.DecodeString(k.N)
		if err != nil {
			continue
		}
		e, err := base64.RawURLEncoding.DecodeString(k.E)
		if err != nil {
			continue
		}
		keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	return keys
}
