package gogen

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-stm/weft/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldens returns the schema files of testdata with their golden outputs.
func goldens(t *testing.T) (schemas, golden []string) {
	schemas, err := filepath.Glob("testdata/*.weft")
	if err != nil || len(schemas) == 0 {
		t.Fatalf("no testdata/*.weft: %v", err)
	}
	for _, s := range schemas {
		golden = append(golden, strings.TrimSuffix(s, ".weft")+".go.golden")
	}
	return schemas, golden
}

func generateFile(t *testing.T, path string) []byte {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := schema.Load(filepath.Base(path), src)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Generate(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGolden compares the generated code with testdata/*.go.golden; run
// "go test ./schema/... -update" to accept a change.
func TestGolden(t *testing.T) {
	schemas, golden := goldens(t)
	for i, path := range schemas {
		t.Run(filepath.Base(path), func(t *testing.T) {
			got := generateFile(t, path)
			if *update {
				if err := os.WriteFile(golden[i], got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden[i])
			if err != nil {
				t.Fatalf("%v (run go test ./schema/... -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("generated code differs from %s (run go test ./schema/... -update and review the diff):\n%s", golden[i], lineDiff(want, got))
			}
		})
	}
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + itoa(i+1) + ":\n- " + wl + "\n+ " + gl
		}
	}
	return "(same lines)"
}

func itoa(n int) string {
	var b []byte
	for n >= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(append([]byte{byte('0' + n)}, b...))
}

// TestGoldenCompiles builds and vets each golden file as a package of a
// scratch module that uses this repository's stm, and runs its tests
// (testdata/NAME_test.go) there.
func TestGoldenCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	root, err := exec.Command(gobin, "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(root)) == 0 {
		t.Skipf("no module root: %v", err)
	}
	modRoot := filepath.Dir(string(bytes.TrimSpace(root)))

	dir := t.TempDir()
	gomod := "module weftgolden\n\ngo 1.26\n\nrequire github.com/weft-stm/weft v0.0.0\n\nreplace github.com/weft-stm/weft => " + modRoot + "\n"
	write(t, filepath.Join(dir, "go.mod"), []byte(gomod))
	if sum, err := os.ReadFile(filepath.Join(modRoot, "go.sum")); err == nil {
		write(t, filepath.Join(dir, "go.sum"), sum)
	}
	_, golden := goldens(t)
	for _, g := range golden {
		src, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(g), ".go.golden")
		write(t, filepath.Join(dir, name, name+".go"), src)
		if test, err := os.ReadFile(filepath.Join("testdata", name+"_test.go")); err == nil {
			write(t, filepath.Join(dir, name, name+"_test.go"), test)
		}
	}
	for _, args := range [][]string{{"vet", "./..."}, {"test", "-count=1", "./..."}} {
		cmd := exec.Command(gobin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s of the golden files: %v\n%s", args[0], err, out)
		}
	}
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestNameErrors(t *testing.T) {
	for _, tt := range []struct {
		name, src string
		want      []string
	}{
		{"setter collides with getter", "package p;\nclass A = 1 {\n  name: string = 1;\n  set_name: string = 2;\n}", []string{
			`x.weft:4:3: go: the getter of field set_name would be named SetName, like the setter of field name (at x.weft:3:3)`,
		}},
		{"observer collides", "package p;\nclass A = 1 {\n  observe_name: counter = 1;\n  name: string = 2;\n}", []string{
			`x.weft:4:3: go: the observer of field name would be named ObserveName, like the getter of field observe_name (at x.weft:3:3)`,
		}},
		{"object names", "package p;\nclass A = 1 {\n  object: string = 1;\n  observe: bool = 2;\n  workspace: int32 = 3;\n}", []string{
			`x.weft:3:3: go: the getter of field object would be named Object, like the embedded *stm.Object`,
			`x.weft:4:3: go: the getter of field observe would be named Observe, like the generated method that observes the whole object`,
			`x.weft:5:3: go: the getter of field workspace would be named Workspace, like the method promoted from *stm.Object, which the observers use`,
		}},
		{"vet methods", "package p;\nclass A = 1 {\n  format: string = 1;\n  write_to: string = 2;\n}", []string{
			`x.weft:3:3: go: the getter of field format would be named Format, a method name go vet reserves for a standard signature`,
			`x.weft:4:3: go: the getter of field write_to would be named WriteTo, a method name go vet reserves for a standard signature`,
		}},
		{"initialisms collide", "package p;\nclass A = 1 {\n  user_id: string = 1;\n  user_i_d: string = 2;\n}", []string{
			`x.weft:4:3: go: the getter of field user_i_d would be named UserID, like the getter of field user_id (at x.weft:3:3)`,
		}},
		{"class names collide", "package p;\nclass User = 1 {\n  friends: set<ref User> = 1;\n}\nclass UserSet = 2 {}\nclass UserClass = 3 {}", []string{
			`x.weft:5:7: go: the type of class UserSet would be named UserSet, like the set type of class User references (at x.weft:2:7)`,
			`x.weft:6:7: go: the type of class UserClass would be named UserClass, like the class variable of class User (at x.weft:2:7)`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := schema.Load("x.weft", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Generate(s, Options{})
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if got := err.Error(); got != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestFieldName(t *testing.T) {
	for in, want := range map[string]string{
		"name": "Name", "old_email": "OldEmail", "avatar_url": "AvatarURL", "user_id": "UserID",
		"id_card": "IDCard", "x2": "X2", "utf8_text": "UTF8Text", "a_b_c": "ABC", "http2_port": "Http2Port",
	} {
		if got := exported(in); got != want {
			t.Errorf("exported(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNoClasses(t *testing.T) {
	s, err := schema.Load("x.weft", []byte("package p;\n"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Generate(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "// Code generated by weft gen from x.weft. DO NOT EDIT.\n\npackage p\n"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestOptions(t *testing.T) {
	s, err := schema.Load("dir/x.weft", []byte("package p;\nclass A = 1 {\n  v: int64 = 1;\n}"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Generate(s, Options{Package: "main"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"// Code generated by weft gen from x.weft. DO NOT EDIT.\n\npackage main\n", "\nimport \"github.com/weft-stm/weft/stm\"\n"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := Generate(s, Options{Package: "func"}); err == nil || err.Error() != `gogen: invalid Go package name "func"` {
		t.Errorf("package func: %v", err)
	}
}
