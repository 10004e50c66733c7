package policy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"muon/internal/auth"
)

// maxDepth bounds rule:x indirection; New refuses cycles, so only a very
// deep chain of rules can reach it.
const maxDepth = 64

type env struct {
	rules  map[string]*Rule
	target map[string]any
	cred   *auth.Credentials
	depth  int
}

type node interface {
	eval(e *env) bool
	write(b *strings.Builder, prec int)
}

type constNode bool

func (n constNode) eval(*env) bool { return bool(n) }
func (n constNode) write(b *strings.Builder, _ int) {
	if n {
		b.WriteString("@")
	} else {
		b.WriteString("!")
	}
}

type notNode struct{ x node }

func (n notNode) eval(e *env) bool { return !n.x.eval(e) }
func (n notNode) write(b *strings.Builder, _ int) {
	b.WriteString("not ")
	n.x.write(b, precNot)
}

type andNode []node

func (n andNode) eval(e *env) bool {
	for _, x := range n {
		if !x.eval(e) {
			return false
		}
	}
	return true
}
func (n andNode) write(b *strings.Builder, prec int) { writeList(b, []node(n), " and ", precAnd, prec) }

type orNode []node

func (n orNode) eval(e *env) bool {
	for _, x := range n {
		if x.eval(e) {
			return true
		}
	}
	return false
}
func (n orNode) write(b *strings.Builder, prec int) { writeList(b, []node(n), " or ", precOr, prec) }

func writeList(b *strings.Builder, xs []node, sep string, own, prec int) {
	if prec > own {
		b.WriteString("(")
	}
	for i, x := range xs {
		if i > 0 {
			b.WriteString(sep)
		}
		// Children of the same operator are parenthesised so that the
		// rendered tree is the parsed one, not a flattened cousin.
		x.write(b, own+1)
	}
	if prec > own {
		b.WriteString(")")
	}
}

type ruleNode struct {
	raw  string
	name string
}

func (n ruleNode) eval(e *env) bool {
	r, ok := e.rules[n.name]
	if !ok || e.depth >= maxDepth {
		return false
	}
	e.depth++
	defer func() { e.depth-- }()
	return r.root.eval(e)
}
func (n ruleNode) write(b *strings.Builder, _ int) { b.WriteString(n.raw) }

type roleNode struct {
	raw  string
	role template
}

func (n roleNode) eval(e *env) bool {
	want, ok := n.role.expand(e.target)
	if !ok {
		return false
	}
	for _, r := range e.cred.Roles {
		if strings.EqualFold(r, want) {
			return true
		}
	}
	return false
}
func (n roleNode) write(b *strings.Builder, _ int) { b.WriteString(n.raw) }

// fieldNode is Neutron's FieldCheck: the target's attribute equals a value
// (as booleans when both read as one) or matches a regexp.
type fieldNode struct {
	raw   string
	attr  string
	value string
	re    *regexp.Regexp
}

func (n fieldNode) eval(e *env) bool {
	v, ok := lookup(e.target, n.attr)
	if !ok || v == nil {
		return false
	}
	if n.re != nil {
		return n.re.MatchString(pyStr(v))
	}
	if want, ok := parseBool(n.value); ok {
		if got, ok := asBool(v); ok {
			return got == want
		}
	}
	return pyStr(v) == n.value
}
func (n fieldNode) write(b *strings.Builder, _ int) { b.WriteString(n.raw) }

// operand is the left side of a generic check.
type operand struct {
	attr  string   // a credential attribute
	lit   string   // a literal,
	isLit bool     // when set
	tmpl  template // or a value from the target
}

type genericNode struct {
	raw   string
	left  operand
	right template
}

func (n genericNode) eval(e *env) bool {
	want, ok := n.right.expand(e.target)
	if !ok {
		return false
	}
	switch {
	case n.left.isLit:
		return n.left.lit == want
	case n.left.tmpl != nil:
		got, ok := n.left.tmpl.expand(e.target)
		return ok && got == want
	}
	if n.left.attr == "roles" || n.left.attr == "role" {
		for _, r := range e.cred.Roles {
			if strings.EqualFold(r, want) {
				return true
			}
		}
		return false
	}
	got := credAttr(e.cred, n.left.attr)
	return got != "" && got == want
}
func (n genericNode) write(b *strings.Builder, _ int) { b.WriteString(n.raw) }

// credAttr is the caller's attribute in the string form checks compare;
// "" when the caller has none.
func credAttr(c *auth.Credentials, name string) string {
	switch name {
	case "user_id":
		return c.UserID
	case "project_id", "tenant_id":
		return c.ProjectID
	case "domain_id":
		return c.DomainID
	case "system_scope":
		if c.System {
			return "all"
		}
	case "is_admin":
		return pyStr(c.Admin())
	}
	return ""
}

// expand substitutes target values; false when one is missing, as a
// KeyError makes oslo's check fail.
func (t template) expand(target map[string]any) (string, bool) {
	if len(t) == 1 && t[0].key == "" {
		return t[0].lit, true
	}
	var b strings.Builder
	for _, p := range t {
		if p.key == "" {
			b.WriteString(p.lit)
			continue
		}
		v, ok := lookup(target, p.key)
		if !ok {
			return "", false
		}
		b.WriteString(pyStr(v))
	}
	return b.String(), true
}

// lookup finds key in the target, first as a whole ("network:tenant_id"),
// then as a dotted path into nested maps.
func lookup(target map[string]any, key string) (any, bool) {
	if v, ok := target[key]; ok {
		return v, true
	}
	if !strings.Contains(key, ".") {
		return nil, false
	}
	var cur any = target
	for seg := range strings.SplitSeq(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// pyStr renders a value as Python's str() would, which is what oslo
// compares.
func pyStr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case string:
		return v
	case bool:
		if v {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case interface{ String() string }:
		return v.String()
	}
	return fmt.Sprint(v)
}

// parseBool is oslo's bool_from_string(strict).
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "on", "y", "yes":
		return true, true
	case "0", "f", "false", "off", "n", "no":
		return false, true
	}
	return false, false
}

func asBool(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		return parseBool(v)
	}
	return false, false
}
