package reconcile_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const controllerPkg = "sigs.k8s.io/controller-runtime/pkg/controller"

// Every controller of Strata retries with the kit's RateLimiter (or
// RateLimiterUpTo): controller-runtime's default would leave a failing object
// waiting up to 1000 s, and a controller added later must not fall back to it.
// The check reads the source: every controller.Options literal names a
// RateLimiter from this package, and every function that builds a controller
// with ctrl.NewControllerManagedBy passes options (WithOptions).
func TestEveryControllerUsesTheKitRateLimiter(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	fset := token.NewFileSet()
	literals, builders := 0, 0
	for _, dir := range []string{"internal", "providers", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			name := importName(f, controllerPkg)
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				builds, withOptions := false, false
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					switch n := n.(type) {
					case *ast.CompositeLit:
						if name != "" && isSelector(n.Type, name, "Options") {
							literals++
							if !setsKitRateLimiter(n) {
								t.Errorf("%s: controller.Options without RateLimiter: kitreconcile.RateLimiter()", fset.Position(n.Pos()))
							}
						}
					case *ast.SelectorExpr:
						switch n.Sel.Name {
						case "NewControllerManagedBy":
							builds = true
						case "WithOptions":
							withOptions = true
						}
					}
					return true
				})
				if builds {
					builders++
					if !withOptions {
						t.Errorf("%s: %s builds a controller without WithOptions (it would retry with controller-runtime's default rate limiter)", fset.Position(fn.Pos()), fn.Name.Name)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The walk must have found the controllers it checks, or it checks nothing.
	if literals < 10 || builders < 10 {
		t.Fatalf("found %d controller.Options literals and %d controller builders under %s; expected Strata's controllers", literals, builders, root)
	}
}

// importName is the name file f uses for the package at path, or "".
func importName(f *ast.File, path string) string {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == path {
			if imp.Name != nil {
				return imp.Name.Name
			}
			return path[strings.LastIndex(path, "/")+1:]
		}
	}
	return ""
}

func isSelector(e ast.Expr, pkg, sel string) bool {
	s, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := s.X.(*ast.Ident)
	return ok && id.Name == pkg && s.Sel.Name == sel
}

// setsKitRateLimiter reports whether lit has RateLimiter: <x>.RateLimiter()
// or <x>.RateLimiterUpTo(...), x being this package.
func setsKitRateLimiter(lit *ast.CompositeLit) bool {
	for _, el := range lit.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		if k, ok := kv.Key.(*ast.Ident); !ok || k.Name != "RateLimiter" {
			continue
		}
		call, ok := kv.Value.(*ast.CallExpr)
		if !ok {
			return false
		}
		s, ok := call.Fun.(*ast.SelectorExpr)
		return ok && (s.Sel.Name == "RateLimiter" || s.Sel.Name == "RateLimiterUpTo")
	}
	return false
}
