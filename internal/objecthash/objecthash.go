// Package objecthash gives a short, stable hash of JSON-encodable values: the operator
// stores such hashes on the objects it writes (and the cache keeps one in place of a pod
// template), so a pass compares one string instead of a spec the API server has
// defaulted.
package objecthash

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Of hashes values as JSON (encoding/json sorts map keys, so equal values hash equal)
// into 16 hex characters.
func Of(values ...any) string {
	raw, err := json.Marshal(values)
	if err != nil {
		panic(err) // API types always encode
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}
