// Package policy decides what a caller may do, as oslo.policy does for
// Neutron: named rules in the oslo rule language, Neutron's defaults built
// in (see Defaults), and an operator's policy.yaml overriding them.
//
// An action is a rule name such as "create_network"; an attribute rule is
// the action and the attribute joined by ":", such as
// "create_network:shared". The target is the resource as a map, plus the
// parent network's owner under "network:project_id" and
// "network:tenant_id" for subnets and ports.
package policy

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"muon/internal/auth"
	"muon/internal/fault"
)

// Enforcer holds a parsed rule set. It is immutable once built and safe
// for concurrent use.
type Enforcer struct {
	rules map[string]*Rule
}

// New builds an enforcer from the core's defaults with overrides (rule
// name -> rule text) replacing or adding rules. It fails on a rule that
// does not parse and on rules that refer to each other in a cycle.
func New(overrides map[string]string) (*Enforcer, error) {
	return Compile(nil, overrides)
}

// Compile builds an enforcer from the core's defaults, the features'
// defaults and an operator's overrides, in that order. A feature's default
// that names a core rule is an error.
func Compile(features, overrides map[string]string) (*Enforcer, error) {
	src := Defaults()
	for name, rule := range features {
		if _, dup := src[name]; dup {
			return nil, fmt.Errorf("policy: default rule %q defined by the core and a feature", name)
		}
		src[name] = rule
	}
	maps.Copy(src, overrides)
	e := &Enforcer{rules: make(map[string]*Rule, len(src))}
	for _, name := range slices.Sorted(maps.Keys(src)) {
		r, err := Parse(src[name])
		if err != nil {
			return nil, fmt.Errorf("policy: rule %q: %w", name, err)
		}
		e.rules[name] = r
	}
	if err := e.checkCycles(); err != nil {
		return nil, err
	}
	return e, nil
}

// Load builds an enforcer from the defaults and an operator's policy file:
// a YAML (or JSON) map of rule name to rule text. A value may also be
// oslo's legacy list of lists, [["a", "b"], ["c"]] meaning (a and b) or c.
func Load(path string, features map[string]string) (*Enforcer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("policy: %s: %w", path, err)
	}
	overrides := make(map[string]string, len(raw))
	for name, v := range raw {
		switch v := v.(type) {
		case nil:
			overrides[name] = ""
		case string:
			overrides[name] = v
		case []any:
			s, err := parseLegacy(v)
			if err != nil {
				return nil, fmt.Errorf("policy: %s: rule %q: %w", path, name, err)
			}
			overrides[name] = s
		default:
			return nil, fmt.Errorf("policy: %s: rule %q: want a string, got %T", path, name, v)
		}
	}
	e, err := Compile(features, overrides)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return e, nil
}

// Enforce tells whether cred may perform action on target. An action with
// no rule falls back to the "default" rule, as oslo does.
func (e *Enforcer) Enforce(action string, target map[string]any, cred *auth.Credentials) bool {
	if _, ok := e.rules[action]; !ok {
		action = "default"
	}
	return e.Check(action, target, cred)
}

// Check evaluates the named rule; a rule that does not exist is false.
func (e *Enforcer) Check(name string, target map[string]any, cred *auth.Credentials) bool {
	r, ok := e.rules[name]
	if !ok {
		return false
	}
	if cred == nil {
		cred = &auth.Credentials{}
	}
	return r.root.eval(&env{rules: e.rules, target: target, cred: cred})
}

// Has tells whether a rule of that name exists.
func (e *Enforcer) Has(name string) bool {
	_, ok := e.rules[name]
	return ok
}

// Attribute tells whether cred may see (action "get_x") or set
// ("create_x", "update_x") attribute attr of target. Attributes without a
// rule "action:attr" are allowed, as in Neutron.
func (e *Enforcer) Attribute(action, attr string, target map[string]any, cred *auth.Credentials) bool {
	name := action + ":" + attr
	if !e.Has(name) {
		return true
	}
	return e.Check(name, target, cred)
}

// Authorize is Enforce for a request: it checks action and the rule of
// every attribute in attrs that has one, and returns Neutron's 403
// PolicyNotAuthorized naming the rules, such as "(rule:create_network and
// rule:create_network:shared) is disallowed by policy", or nil.
func (e *Enforcer) Authorize(action string, target map[string]any, cred *auth.Credentials, attrs ...string) error {
	names := []string{"rule:" + action}
	ok := e.Enforce(action, target, cred)
	for _, a := range attrs {
		name := action + ":" + a
		if !e.Has(name) {
			continue
		}
		names = append(names, "rule:"+name)
		ok = ok && e.Check(name, target, cred)
	}
	if ok {
		return nil
	}
	what := names[0]
	if len(names) > 1 {
		what = "(" + strings.Join(names, " and ") + ")"
	}
	return fault.Forbidden("PolicyNotAuthorized", "%s is disallowed by policy", what)
}

// checkCycles refuses rules that reach themselves through rule:x.
func (e *Enforcer) checkCycles() error {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case active:
			return fmt.Errorf("policy: rules form a cycle: %s", strings.Join(append(path, name), " -> "))
		case done:
			return nil
		}
		r, ok := e.rules[name]
		if !ok {
			return nil
		}
		state[name] = active
		var err error
		walk(r.root, func(n ruleNode) {
			if err == nil {
				err = visit(n.name, append(path, name))
			}
		})
		state[name] = done
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(e.rules)) {
		if err := visit(name, nil); err != nil {
			return err
		}
	}
	return nil
}

func walk(n node, fn func(ruleNode)) {
	switch n := n.(type) {
	case ruleNode:
		fn(n)
	case notNode:
		walk(n.x, fn)
	case andNode:
		for _, x := range n {
			walk(x, fn)
		}
	case orNode:
		for _, x := range n {
			walk(x, fn)
		}
	}
}
