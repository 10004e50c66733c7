// Package arch holds the test that keeps the import graph to the
// architecture's "nevers" (docs/ARCHITECTURE.md).
package arch

import (
	"cmp"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// never is one rule: no package matching From may depend, directly or
// not, on a package matching To.
type never struct {
	name string
	from []string // import paths; a trailing "/..." matches the subtree
	to   []string
}

var nevers = []never{
	{"plugins-know-no-http-layer",
		[]string{"muon/internal/ml2/...", "muon/internal/l3", "muon/internal/secgroup", "muon/internal/metering",
			"muon/internal/agents", "muon/internal/quota", "muon/internal/feature", "muon/internal/store/..."},
		[]string{"muon/internal/api", "muon/internal/server/...", "muon/internal/cli"}},
	{"server-never-touches-the-kernel",
		[]string{"muon/internal/server", "muon/internal/api", "muon/internal/feature/...", "muon/internal/channel"},
		[]string{"muon/internal/kernel/...", "muon/internal/agent/...", "github.com/vishvananda/..."}},
	{"agents-reach-the-server-only-through-the-channel",
		[]string{"muon/internal/agent/...", "muon/internal/kernel/..."},
		[]string{"muon/internal/api", "muon/internal/server/...", "muon/internal/store/...", "muon/internal/ml2/...",
			"muon/internal/feature/...", "muon/internal/channel", "muon/internal/agents", "muon/internal/l3", "muon/internal/secgroup",
			"muon/internal/metering", "muon/internal/policy", "muon/internal/identity"}},
	{"the-contract-knows-no-plugin",
		[]string{"muon/internal/agentapi"},
		[]string{"muon/internal/ml2/...", "muon/internal/store/...", "muon/internal/api", "muon/internal/agents"}},
}

func match(pkg string, pats []string) bool {
	for _, p := range pats {
		if sub, ok := strings.CutSuffix(p, "/..."); ok {
			if pkg == sub || strings.HasPrefix(pkg, sub+"/") {
				return true
			}
		} else if pkg == p {
			return true
		}
	}
	return false
}

type pkg struct {
	ImportPath string
	Deps       []string
}

// graph lists every package of the module with its dependencies.
func graph(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps=false", "-json=ImportPath,Deps", "muon/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func violations(pkgs []pkg, n never) []string {
	var bad []string
	for _, p := range pkgs {
		if !match(p.ImportPath, n.from) {
			continue
		}
		for _, d := range p.Deps {
			if match(d, n.to) {
				bad = append(bad, p.ImportPath+" -> "+d)
			}
		}
	}
	slices.Sort(bad)
	return bad
}

func TestNevers(t *testing.T) {
	pkgs := graph(t)
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; the module is bigger", len(pkgs))
	}
	for _, n := range nevers {
		t.Run(n.name, func(t *testing.T) {
			for _, v := range violations(pkgs, n) {
				t.Error(v)
			}
		})
	}
}

// TestChannelNamesNoKinds: the agent channel is generic: it imports no
// plugin and its code names no resource kind; features bring sections.
func TestChannelNamesNoKinds(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}|{{join .Imports \" \"}}|{{join .GoFiles \" \"}}", "muon/internal/channel").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	parts := strings.SplitN(strings.TrimSpace(string(out)), "|", 3)
	if len(parts) != 3 || parts[2] == "" {
		t.Fatalf("go list: %q", out)
	}
	plugins := []string{"muon/internal/ml2/...", "muon/internal/l3", "muon/internal/secgroup", "muon/internal/metering", "muon/internal/agents"}
	for _, imp := range strings.Fields(parts[1]) {
		if match(imp, plugins) {
			t.Errorf("channel imports %s", imp)
		}
	}
	for _, name := range strings.Fields(parts[2]) {
		b, err := os.ReadFile(filepath.Join(parts[0], name))
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{`"port"`, `"network"`, `"subnet"`, `"segment"`, `"router"`, `"agent"`, `"floatingip"`} {
			if strings.Contains(string(b), kind) {
				t.Errorf("channel/%s names the kind %s", name, kind)
			}
		}
	}
}

// TestNeversBite shows each rule would catch a breach: a made-up package
// that depends on what the rule forbids.
func TestNeversBite(t *testing.T) {
	for _, n := range nevers {
		t.Run(n.name, func(t *testing.T) {
			from := strings.TrimSuffix(n.from[0], "/...")
			to := strings.TrimSuffix(n.to[0], "/...")
			fake := []pkg{{ImportPath: from, Deps: []string{"fmt", to}}}
			if got := violations(fake, n); len(got) != 1 {
				t.Errorf("%s depending on %s: violations %v, want one", from, to, got)
			}
		})
	}
}

// TestNamespacesEnteredInOnePlace: only internal/kernel/netns moves a
// thread between network namespaces (its package doc says why): nothing
// else locks OS threads or calls vishvananda/netns's Set, New or NewNamed.
func TestNamespacesEnteredInOnePlace(t *testing.T) {
	out, err := exec.Command("go", "list", "-f",
		"{{.Dir}} {{range .GoFiles}}{{.}} {{end}}{{range .TestGoFiles}}{{.}} {{end}}{{range .XTestGoFiles}}{{.}} {{end}}", "muon/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	files := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasSuffix(f[0], "/internal/kernel/netns") || strings.HasSuffix(f[0], "/internal/arch") {
			continue
		}
		for _, name := range f[1:] {
			b, err := os.ReadFile(filepath.Join(f[0], name))
			if err != nil {
				t.Fatal(err)
			}
			files++
			for _, bad := range enteringCalls(string(b)) {
				t.Errorf("%s/%s calls %s: use internal/kernel/netns", f[0], name, bad)
			}
		}
	}
	if files < 50 {
		t.Fatalf("scanned %d files; the module has more", files)
	}
}

// enteringCalls lists the calls in src that move a thread's namespace.
func enteringCalls(src string) []string {
	var out []string
	if strings.Contains(src, "LockOSThread") {
		out = append(out, "runtime.LockOSThread")
	}
	m := vishImport.FindStringSubmatch(src)
	if m == nil {
		return out
	}
	name := cmp.Or(m[1], "netns")
	call := regexp.MustCompile(`(^|[^\w.])` + regexp.QuoteMeta(name) + `\.(Set|New|NewNamed)\(`)
	for _, c := range call.FindAllStringSubmatch(src, -1) {
		out = append(out, name+"."+c[2])
	}
	return out
}

// vishImport finds vishvananda/netns's import and its local name.
var vishImport = regexp.MustCompile(`(?m)^\s*(?:import\s+)?(?:(\w+)\s+)?"github.com/vishvananda/netns"`)

func TestEnteringCallsBite(t *testing.T) {
	src := "import \"github.com/vishvananda/netns\"\nfunc f() { runtime.LockOSThread(); netns.Set(h) }"
	if got := enteringCalls(src); len(got) != 2 {
		t.Errorf("enteringCalls = %v, want LockOSThread and Set", got)
	}
	for _, ok := range []string{
		"import \"muon/internal/kernel/netns\"\nfunc f() { netns.New() }",
		"import (\n\tvnetns \"github.com/vishvananda/netns\"\n\t\"muon/internal/kernel/netns\"\n)\nfunc f() { netns.New(); vnetns.Get() }",
		"import (\n\t\"github.com/vishvananda/netns\"\n\tknetns \"muon/internal/kernel/netns\"\n)\nfunc f() { knetns.New() }",
	} {
		if got := enteringCalls(ok); len(got) != 0 {
			t.Errorf("flagged %v in %q", got, ok)
		}
	}
	if got := enteringCalls("import (\n\tvn \"github.com/vishvananda/netns\"\n)\nfunc f() { vn.NewNamed(x) }"); len(got) != 1 {
		t.Errorf("an aliased NewNamed not flagged: %v", got)
	}
}
