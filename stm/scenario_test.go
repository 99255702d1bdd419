package stm_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/weft-stm/weft/stm"
)

// TestScenarios runs the text scenarios in testdata/scenarios: commands that
// create objects, open transactions, read, write and commit them in an
// exact interleaving, with the expected output under each. Regenerate the
// expectations with -rewrite after a deliberate change:
//
//	go test ./stm -run TestScenarios -rewrite
//
// Commands (names are letters; values are integers):
//
//	var a=1 b=2           new variables
//	counter c | map m | list l
//	begin t1 [readonly]   prints the snapshot
//	get t1 a | set t1 a 5 | add t1 c 2 | len t1 m | put t1 m k 1 | putfast t1 m k 1
//	mget t1 m k | delete t1 m k | append t1 l 1 2 | lget t1 l 0 | lset t1 l 0 9
//	commit t1             prints the version or the error
//	abort t1
//	state                 the latest committed value of every object
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		sc := newScenario()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out, err := sc.run(d)
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			return out
		})
	})
}

type scenario struct {
	ws    *stm.Workspace
	vars  map[string]*stm.Var[int]
	ctrs  map[string]*stm.Counter
	maps  map[string]*stm.Map[string, int]
	lists map[string]*stm.List[int]
	names map[stm.ID]string
	txs   map[string]*stm.Tx
}

func newScenario() *scenario {
	return &scenario{ws: stm.NewWorkspace(), vars: map[string]*stm.Var[int]{},
		ctrs: map[string]*stm.Counter{}, maps: map[string]*stm.Map[string, int]{},
		lists: map[string]*stm.List[int]{}, names: map[stm.ID]string{}, txs: map[string]*stm.Tx{}}
}

func (sc *scenario) run(d *datadriven.TestData) (string, error) {
	args := strings.Fields(d.Input)
	if len(d.CmdArgs) > 0 || d.Cmd != "" {
		args = append([]string{d.Cmd}, cmdArgs(d)...)
	}
	if len(args) == 0 {
		return "", errors.New("empty command")
	}
	cmd, rest := args[0], args[1:]
	num := func(i int) (int, error) {
		if i >= len(rest) {
			return 0, fmt.Errorf("%s: missing argument %d", cmd, i+1)
		}
		return strconv.Atoi(rest[i])
	}
	tx := func() (*stm.Tx, error) {
		if len(rest) == 0 {
			return nil, fmt.Errorf("%s: no transaction named", cmd)
		}
		t, ok := sc.txs[rest[0]]
		if !ok {
			return nil, fmt.Errorf("no transaction %s", rest[0])
		}
		return t, nil
	}
	obj := func(i int) string {
		if i < len(rest) {
			return rest[i]
		}
		return ""
	}
	switch cmd {
	case "var":
		for _, a := range rest {
			name, val, _ := strings.Cut(a, "=")
			n, err := strconv.Atoi(val)
			if err != nil {
				return "", err
			}
			v := stm.NewVar(sc.ws, n)
			sc.vars[name], sc.names[v.ID()] = v, name
		}
		return "", nil
	case "counter":
		c := stm.NewCounter(sc.ws)
		sc.ctrs[obj(0)], sc.names[c.ID()] = c, obj(0)
		return "", nil
	case "map":
		m := stm.NewMap[string, int](sc.ws)
		sc.maps[obj(0)], sc.names[m.ID()] = m, obj(0)
		return "", nil
	case "list":
		l := stm.NewList[int](sc.ws)
		sc.lists[obj(0)], sc.names[l.ID()] = l, obj(0)
		return "", nil
	case "begin":
		var t *stm.Tx
		if slices.Contains(rest, "readonly") {
			t = sc.ws.BeginReadOnly()
		} else {
			t = sc.ws.Begin()
		}
		sc.txs[obj(0)] = t
		return fmt.Sprintf("%s snapshot %d\n", obj(0), t.Snapshot()), nil
	case "commit":
		t, err := tx()
		if err != nil {
			return "", err
		}
		h, err := t.Commit()
		if err != nil {
			return sc.describe(err) + "\n", nil
		}
		return fmt.Sprintf("committed: version %d\n", h.Version()), nil
	case "abort":
		t, err := tx()
		if err != nil {
			return "", err
		}
		t.Abort()
		return "aborted\n", nil
	case "state":
		return sc.state(), nil
	}
	// Operations within a transaction: op tx object [args].
	t, err := tx()
	if err != nil {
		return "", err
	}
	o := obj(1)
	switch cmd {
	case "get":
		return fmt.Sprintln(sc.vars[o].Get(t)), nil
	case "set":
		n, err := num(2)
		if err != nil {
			return "", err
		}
		sc.vars[o].Set(t, n)
		return "", nil
	case "add":
		n, err := num(2)
		if err != nil {
			return "", err
		}
		sc.ctrs[o].Add(t, int64(n))
		return "", nil
	case "cget":
		return fmt.Sprintln(sc.ctrs[o].Get(t)), nil
	case "mget":
		v, ok := sc.maps[o].Get(t, obj(2))
		return fmt.Sprintln(v, ok), nil
	case "put", "putfast":
		n, err := num(3)
		if err != nil {
			return "", err
		}
		if cmd == "putfast" {
			sc.maps[o].PutFast(t, obj(2), n)
			return "", nil
		}
		old, ok := sc.maps[o].Put(t, obj(2), n)
		return fmt.Sprintln(old, ok), nil
	case "delete":
		return fmt.Sprintln(sc.maps[o].Delete(t, obj(2))), nil
	case "len":
		if m, ok := sc.maps[o]; ok {
			return fmt.Sprintln(m.Len(t)), nil
		}
		return fmt.Sprintln(sc.lists[o].Len(t)), nil
	case "append":
		var vs []int
		for i := 2; i < len(rest); i++ {
			n, err := num(i)
			if err != nil {
				return "", err
			}
			vs = append(vs, n)
		}
		sc.lists[o].Append(t, vs...)
		return "", nil
	case "lget":
		i, err := num(2)
		if err != nil {
			return "", err
		}
		return fmt.Sprintln(sc.lists[o].Get(t, i)), nil
	case "lset":
		i, err := num(2)
		if err != nil {
			return "", err
		}
		n, err := num(3)
		if err != nil {
			return "", err
		}
		sc.lists[o].Set(t, i, n)
		return "", nil
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

func cmdArgs(d *datadriven.TestData) []string {
	var out []string
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 {
			out = append(out, a.Key)
		} else {
			out = append(out, a.Key+"="+strings.Join(a.Vals, ","))
		}
	}
	return out
}

// describe prints an error with object names instead of ids.
func (sc *scenario) describe(err error) string {
	var ce *stm.ConflictError
	if errors.As(err, &ce) {
		s := "conflict on " + sc.names[ce.Object]
		if ce.Key != nil {
			s += fmt.Sprintf(" key %v", ce.Key)
		} else if ce.What != "" {
			s += " " + ce.What
		}
		return s
	}
	return "error: " + err.Error()
}

func (sc *scenario) state() string {
	var lines []string
	for n, v := range sc.vars {
		lines = append(lines, fmt.Sprintf("%s=%d", n, v.Get(stm.Auto)))
	}
	for n, c := range sc.ctrs {
		lines = append(lines, fmt.Sprintf("%s=%d", n, c.Get(stm.Auto)))
	}
	for n, m := range sc.maps {
		var kv []string
		for k, v := range m.All(stm.Auto) {
			kv = append(kv, fmt.Sprintf("%s:%d", k, v))
		}
		slices.Sort(kv)
		lines = append(lines, fmt.Sprintf("%s={%s}", n, strings.Join(kv, " ")))
	}
	for n, l := range sc.lists {
		var vs []string
		for _, v := range l.All(stm.Auto) {
			vs = append(vs, strconv.Itoa(v))
		}
		lines = append(lines, fmt.Sprintf("%s=[%s]", n, strings.Join(vs, " ")))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}
