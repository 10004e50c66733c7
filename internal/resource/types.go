package resource

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Type converts a decoded JSON value to the attribute's canonical form and
// parses filter strings for comparison.
type Type interface {
	// Convert returns the canonical value or an error phrase such as
	// "'x' is not a valid boolean value".
	Convert(v any) (any, error)
	// Parse turns a query-string value into the canonical form.
	Parse(s string) (any, error)
}

type stringType struct{ max int }
type boolType struct{}
type intType struct{}
type uuidType struct{}
type stringListType struct{}
type anyType struct{}

var (
	Bool       Type = boolType{}
	Int        Type = intType{}
	UUID       Type = uuidType{}
	StringList Type = stringListType{}
	Any        Type = anyType{}
)

// String is a string attribute of at most max characters (0: unbounded).
func String(max int) Type { return stringType{max} }

func (t stringType) Convert(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("'%s' is not a valid string", show(v))
	}
	if t.max > 0 && utf8.RuneCountInString(s) > t.max {
		return nil, fmt.Errorf("'%s' exceeds maximum length of %d", s, t.max)
	}
	return s, nil
}
func (stringType) Parse(s string) (any, error) { return s, nil }

func (boolType) Convert(v any) (any, error) {
	switch t := v.(type) {
	case bool:
		return t, nil
	case string:
		return parseBool(t)
	case json.Number:
		switch t.String() {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
	}
	return nil, fmt.Errorf("'%s' cannot be converted to boolean", show(v))
}
func (boolType) Parse(s string) (any, error) { return parseBool(s) }

func parseBool(s string) (any, error) {
	switch strings.ToLower(s) {
	case "true", "1", "t", "yes", "y", "on":
		return true, nil
	case "false", "0", "f", "no", "n", "off":
		return false, nil
	}
	return nil, fmt.Errorf("'%s' cannot be converted to boolean", s)
}

func (intType) Convert(v any) (any, error) {
	switch t := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(t.String(), 10, 64); err == nil {
			return n, nil
		}
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64); err == nil {
			return n, nil
		}
	case int64:
		return t, nil
	case int:
		return int64(t), nil
	case float64:
		if t == float64(int64(t)) {
			return int64(t), nil
		}
	}
	return nil, fmt.Errorf("'%s' is not an integer", show(v))
}
func (intType) Parse(s string) (any, error) { return intType{}.Convert(s) }

func (uuidType) Convert(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("'%s' is not a valid UUID", show(v))
	}
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return nil, fmt.Errorf("'%s' is not a valid UUID", s)
	}
	return u.String(), nil
}
func (uuidType) Parse(s string) (any, error) { return s, nil }

func (stringListType) Convert(v any) (any, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("'%s' is not a list", show(v))
	}
	out := make([]any, 0, len(l))
	for _, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("'%s' is not a valid string", show(x))
		}
		out = append(out, s)
	}
	return out, nil
}
func (stringListType) Parse(s string) (any, error) { return s, nil }

func (anyType) Convert(v any) (any, error)  { return v, nil }
func (anyType) Parse(s string) (any, error) { return s, nil }

// show renders a value the way Neutron's messages quote it.
func show(v any) string {
	switch t := v.(type) {
	case nil:
		return "None"
	case bool:
		if t {
			return "True"
		}
		return "False"
	case string:
		return t
	case json.Number:
		return t.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// ListOf is a list whose every item is converted by elem.
func ListOf(elem Type) Type { return listType{elem} }

type listType struct{ elem Type }

func (t listType) Convert(v any) (any, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("'%s' is not a list", show(v))
	}
	out := make([]any, 0, len(l))
	for _, x := range l {
		c, err := t.elem.Convert(x)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
func (t listType) Parse(s string) (any, error) { return t.elem.Parse(s) }

// Dict is a JSON object attribute.
var Dict Type = dictType{}

type dictType struct{}

func (dictType) Convert(v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("'%s' is not a dictionary", show(v))
	}
	return m, nil
}
func (dictType) Parse(s string) (any, error) { return s, nil }
