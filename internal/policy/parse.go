package policy

import (
	"fmt"
	"regexp"
	"strings"
)

// Rule is one parsed policy expression, such as
// "rule:context_is_admin or project_id:%(project_id)s". The zero Rule is
// not useful; build one with Parse.
type Rule struct {
	root node
}

// String renders the rule in canonical form: keywords in lower case,
// parentheses only where precedence needs them, checks as written. Parsing
// the result gives an equal rule.
func (r *Rule) String() string {
	var b strings.Builder
	r.root.write(&b, precOr)
	return b.String()
}

// SyntaxError is a rule that does not parse. Pos is the byte offset in the
// rule text where the problem was found.
type SyntaxError struct {
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("at offset %d: %s", e.Pos, e.Msg) }

// Parse reads one rule in the oslo.policy language:
//
//	@, !                          always, never ("" is always too)
//	rule:NAME                     another rule
//	role:NAME                     a role of the caller (case-insensitive)
//	field:RESOURCE:ATTR=VALUE     the target's ATTR equals VALUE (~REGEXP matches)
//	KEY:VALUE                     a caller attribute (project_id, user_id, domain_id,
//	                              system_scope, roles, is_admin) or literal ('x', True, 5)
//	                              equals VALUE; %(key)s in either side reads the target
//	not X, X and Y, X or Y, (X)   case-insensitive keywords; not > and > or
func Parse(s string) (*Rule, error) {
	p := &parser{src: s}
	if err := p.lex(); err != nil {
		return nil, err
	}
	if len(p.toks) == 0 {
		return &Rule{root: constNode(true)}, nil
	}
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		t := p.toks[p.i]
		return nil, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("unexpected %s", t.describe())}
	}
	return &Rule{root: n}, nil
}

// parseLegacy turns the list-of-lists form, [["a", "b"], ["c"]] meaning
// (a and b) or c, into rule text. An empty outer list is always.
func parseLegacy(v []any) (string, error) {
	var ors []string
	for _, inner := range v {
		l, ok := inner.([]any)
		if !ok {
			return "", fmt.Errorf("legacy rule: %v is not a list", inner)
		}
		var ands []string
		for _, c := range l {
			s, ok := c.(string)
			if !ok {
				return "", fmt.Errorf("legacy rule: %v is not a string", c)
			}
			ands = append(ands, "("+s+")")
		}
		if len(ands) == 0 {
			// oslo: an empty inner list never matches.
			ands = []string{"!"}
		}
		ors = append(ors, "("+strings.Join(ands, " and ")+")")
	}
	return strings.Join(ors, " or "), nil
}

const (
	precOr = iota
	precAnd
	precNot
)

type tokKind int

const (
	tokLParen tokKind = iota
	tokRParen
	tokAnd
	tokOr
	tokNot
	tokCheck
)

type token struct {
	kind tokKind
	pos  int
	text string
}

func (t token) describe() string {
	switch t.kind {
	case tokLParen:
		return `"("`
	case tokRParen:
		return `")"`
	case tokCheck:
		return fmt.Sprintf("check %q", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

type parser struct {
	src  string
	toks []token
	i    int
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// lex splits the rule into parentheses, keywords and checks. A check runs
// to the next space or unmatched ")"; "%(...)" and quoted parts inside it
// are taken whole, so "project_id:%(project_id)s)" and "name:'a b'" work.
func (p *parser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isSpace(c):
			i++
		case c == '(':
			p.toks = append(p.toks, token{tokLParen, i, "("})
			i++
		case c == ')':
			p.toks = append(p.toks, token{tokRParen, i, ")"})
			i++
		default:
			start := i
		scan:
			for i < len(s) {
				switch c := s[i]; {
				case isSpace(c) || c == ')':
					break scan
				case c == '%' && i+1 < len(s) && s[i+1] == '(':
					end := strings.IndexByte(s[i:], ')')
					if end < 0 {
						return &SyntaxError{Pos: i, Msg: `unterminated "%("`}
					}
					i += end + 1
				case c == '\'' || c == '"':
					end := strings.IndexByte(s[i+1:], c)
					if end < 0 {
						return &SyntaxError{Pos: i, Msg: "unterminated quote"}
					}
					i += end + 2
				default:
					i++
				}
			}
			text := s[start:i]
			t := token{tokCheck, start, text}
			switch strings.ToLower(text) {
			case "and":
				t.kind = tokAnd
			case "or":
				t.kind = tokOr
			case "not":
				t.kind = tokNot
			}
			p.toks = append(p.toks, t)
		}
	}
	return nil
}

func (p *parser) peek() (token, bool) {
	if p.i < len(p.toks) {
		return p.toks[p.i], true
	}
	return token{}, false
}

func (p *parser) parseOr() (node, error) {
	n, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	ors := orNode{n}
	for {
		t, ok := p.peek()
		if !ok || t.kind != tokOr {
			break
		}
		p.i++
		m, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		ors = append(ors, m)
	}
	if len(ors) == 1 {
		return n, nil
	}
	return ors, nil
}

func (p *parser) parseAnd() (node, error) {
	n, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	ands := andNode{n}
	for {
		t, ok := p.peek()
		if !ok || t.kind != tokAnd {
			break
		}
		p.i++
		m, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		ands = append(ands, m)
	}
	if len(ands) == 1 {
		return n, nil
	}
	return ands, nil
}

func (p *parser) parseNot() (node, error) {
	t, ok := p.peek()
	if ok && t.kind == tokNot {
		p.i++
		n, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	}
	return p.parseAtom()
}

func (p *parser) parseAtom() (node, error) {
	t, ok := p.peek()
	if !ok {
		return nil, &SyntaxError{Pos: len(p.src), Msg: "unexpected end of rule"}
	}
	p.i++
	switch t.kind {
	case tokLParen:
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		c, ok := p.peek()
		if !ok {
			return nil, &SyntaxError{Pos: t.pos, Msg: `unclosed "("`}
		}
		if c.kind != tokRParen {
			return nil, &SyntaxError{Pos: c.pos, Msg: fmt.Sprintf(`expected ")", found %s`, c.describe())}
		}
		p.i++
		return n, nil
	case tokCheck:
		return parseCheck(t.text, t.pos)
	}
	return nil, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("unexpected %s", t.describe())}
}

// splitColon splits at the first ':' outside "%(...)" and quotes.
func splitColon(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ':':
			return s[:i], s[i+1:], true
		case c == '%' && i+1 < len(s) && s[i+1] == '(':
			if end := strings.IndexByte(s[i:], ')'); end >= 0 {
				i += end
			}
		case c == '\'' || c == '"':
			if end := strings.IndexByte(s[i+1:], c); end >= 0 {
				i += end + 1
			}
		}
	}
	return "", "", false
}

func parseCheck(text string, pos int) (node, error) {
	switch text {
	case "@":
		return constNode(true), nil
	case "!":
		return constNode(false), nil
	}
	kind, match, ok := splitColon(text)
	if !ok {
		return nil, &SyntaxError{Pos: pos, Msg: fmt.Sprintf(`check %q has no ":"`, text)}
	}
	if kind == "" {
		return nil, &SyntaxError{Pos: pos, Msg: fmt.Sprintf("check %q has no kind", text)}
	}
	mpos := pos + len(kind) + 1
	switch kind {
	case "rule":
		if match == "" {
			return nil, &SyntaxError{Pos: mpos, Msg: "rule: needs a name"}
		}
		return ruleNode{raw: text, name: match}, nil
	case "role":
		t, err := parseTemplate(match, mpos)
		if err != nil {
			return nil, err
		}
		if match == "" {
			return nil, &SyntaxError{Pos: mpos, Msg: "role: needs a name"}
		}
		return roleNode{raw: text, role: t}, nil
	case "field":
		return parseField(text, match, mpos)
	case "http", "https":
		return nil, &SyntaxError{Pos: pos, Msg: kind + " checks are not supported"}
	}
	g := genericNode{raw: text}
	switch {
	case strings.Contains(kind, "%("):
		t, err := parseTemplate(kind, pos)
		if err != nil {
			return nil, err
		}
		g.left = operand{tmpl: t}
	default:
		if lit, ok := literal(kind); ok {
			g.left = operand{lit: lit, isLit: true}
		} else {
			g.left = operand{attr: kind}
		}
	}
	if lit, ok := quoted(match); ok {
		g.right = template{{lit: lit}}
	} else {
		t, err := parseTemplate(match, mpos)
		if err != nil {
			return nil, err
		}
		g.right = t
	}
	return g, nil
}

var numberRE = regexp.MustCompile(`^[-+]?[0-9]+(\.[0-9]+)?$`)

// literal reads the left side of a generic check as Python's literal_eval
// would, in the string form it is compared in.
func literal(s string) (string, bool) {
	if q, ok := quoted(s); ok {
		return q, true
	}
	switch s {
	case "True", "False", "None":
		return s, true
	}
	if numberRE.MatchString(s) {
		return s, true
	}
	return "", false
}

func quoted(s string) (string, bool) {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] && !strings.ContainsRune(s[1:len(s)-1], rune(s[0])) {
		return s[1 : len(s)-1], true
	}
	return "", false
}

// parseField reads Neutron's "field:RESOURCE:ATTR=VALUE".
func parseField(text, match string, pos int) (node, error) {
	res, rest, ok := strings.Cut(match, ":")
	if !ok || res == "" {
		return nil, &SyntaxError{Pos: pos, Msg: "field check needs RESOURCE:ATTR=VALUE"}
	}
	attr, val, ok := strings.Cut(rest, "=")
	if !ok || attr == "" {
		return nil, &SyntaxError{Pos: pos + len(res) + 1, Msg: "field check needs ATTR=VALUE"}
	}
	f := fieldNode{raw: text, attr: attr, value: val}
	if re, ok := strings.CutPrefix(val, "~"); ok {
		r, err := regexp.Compile(`^(?:` + re + `)`)
		if err != nil {
			return nil, &SyntaxError{Pos: pos + len(res) + 1 + len(attr) + 2, Msg: "bad regexp: " + err.Error()}
		}
		f.re = r
	}
	return f, nil
}

// template is text with %(key)s substitutions from the target.
type template []part

type part struct {
	lit string
	key string // when set, a substitution
}

func parseTemplate(s string, pos int) (template, error) {
	var t template
	for {
		i := strings.Index(s, "%(")
		if i < 0 {
			if s != "" {
				t = append(t, part{lit: s})
			}
			return t, nil
		}
		end := strings.IndexByte(s[i:], ')')
		if end < 0 {
			return nil, &SyntaxError{Pos: pos + i, Msg: `unterminated "%("`}
		}
		key := s[i+2 : i+end]
		if key == "" {
			return nil, &SyntaxError{Pos: pos + i, Msg: `empty "%()s"`}
		}
		if i+end+1 >= len(s) || s[i+end+1] != 's' {
			return nil, &SyntaxError{Pos: pos + i + end + 1, Msg: `"%(...)" must be followed by "s"`}
		}
		if i > 0 {
			t = append(t, part{lit: s[:i]})
		}
		t = append(t, part{key: key})
		s = s[i+end+2:]
		pos += i + end + 2
	}
}
