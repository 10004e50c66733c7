package resource

import (
	"encoding/json"
	"slices"
	"strconv"
)

// The accessors below read a document's values as the plugins want them,
// whether the document came from a request (int64, []any) or from the
// store (json.Number): a value of another type reads as the zero value.

// Str reads a string.
func Str(v any) string {
	s, _ := v.(string)
	return s
}

// BoolOf reads a boolean.
func BoolOf(v any) bool {
	b, _ := v.(bool)
	return b
}

// IntOf reads a whole number.
func IntOf(v any) int64 {
	switch t := v.(type) {
	case int64:
		return t
	case int:
		return int64(t)
	case float64:
		return int64(t)
	case json.Number:
		n, _ := strconv.ParseInt(t.String(), 10, 64)
		return n
	}
	return 0
}

// Strings reads a list of strings, skipping what is not a string; it is
// never nil.
func Strings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// List makes a document's list of a Go slice.
func List[T any](l []T) []any {
	out := make([]any, len(l))
	for i, x := range l {
		out[i] = x
	}
	return out
}

// Clone copies a document's top level; it is never nil.
func Clone(d Doc) Doc {
	c := make(Doc, len(d))
	for k, v := range d {
		c[k] = v
	}
	return c
}

// Uniq is l without repeats, in first-seen order; it is never nil.
func Uniq(l []string) []string {
	out := make([]string, 0, len(l))
	for _, s := range l {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
