package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The package table of docs/ARCHITECTURE.md is the layering: each row
// names the samsa packages its package may import. Every package of the
// module must have a row, and import no samsa package its row does not
// name (test files excepted), so the document and the code cannot drift.
func TestPackageImportsMatchArchitecture(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9/-]+)` \\| .* \\| ([^|]*) \\|$")
	allowed := map[string]map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		pkg := "samsa/" + strings.TrimSuffix(m[1], "/")
		allowed[pkg] = map[string]bool{}
		for _, dep := range strings.Split(m[2], ",") {
			if dep = strings.TrimSpace(dep); dep != "—" && dep != "" {
				allowed[pkg]["samsa/"+dep] = true
			}
		}
	}
	if len(allowed) < 10 {
		t.Fatalf("found %d rows in docs/ARCHITECTURE.md's package table; has its format changed?", len(allowed))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "samsa/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg, imports := f[0], f[1:]
		may, ok := allowed[pkg]
		if !ok {
			t.Errorf("package %s has no row in docs/ARCHITECTURE.md's package table", pkg)
			continue
		}
		for _, imp := range imports {
			if (imp == "samsa" || strings.HasPrefix(imp, "samsa/")) && !may[imp] {
				t.Errorf("%s imports %s, which its row in docs/ARCHITECTURE.md does not allow", pkg, imp)
			}
		}
	}
}
