package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"

	"github.com/parleyhq/parley/internal/apiclient"
)

// apiError is an error answer of the management API.
type apiError = apiclient.Error

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// remarshal converts between two shapes through JSON; unknown fields are errors.
func remarshal(in, out any) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}
