package authority

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/weft-stm/weft/wire"
)

// TestScenarios runs the text scenarios in testdata/scenarios against a
// fresh Share each. Regenerate the expectations after a deliberate change
// with
//
//	go test ./authority -run TestScenarios -rewrite
//
// and read every one. Commands:
//
//	reset [log=N] [verdicts=N]   a new Share with that Config (default: log=3 verdicts=16)
//	commit id=R:S        one commit; its lines are:
//	  dep R:S
//	  read whole O @V | read field O F @V | read key O K @V | read index O I @V
//	  create O KIND [class=N] [F=VAL ...] | remove O
//	  set O F VAL | var O VAL | add O N | put O K VAL | del O K
//	  sadd O VAL | srem O VAL | lset O I VAL | append O VAL...
//	state                the objects, with the version of every part
//	delta since=V        DeltaSince(V)
//	snapshot [frame=N] [objects=N] [elements=N]   the chunks, then a Load round trip
//
// Object ids are written R:S; values are integers, or strings otherwise.
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		s := NewWithConfig("test", Config{LogSize: 3, Verdicts: 16})
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd == "reset" {
				var cfg Config
				for _, a := range d.CmdArgs {
					n, _ := strconv.Atoi(a.Vals[0])
					switch a.Key {
					case "log":
						cfg.LogSize = n
					case "verdicts":
						cfg.Verdicts = n
					}
				}
				s = NewWithConfig("test", cfg)
				return ""
			}
			out, err := runScenario(s, d)
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			return out
		})
	})
}

func runScenario(s *Share, d *datadriven.TestData) (string, error) {
	arg := func(key string) (string, bool) {
		for _, a := range d.CmdArgs {
			if a.Key == key && len(a.Vals) > 0 {
				return a.Vals[0], true
			}
		}
		return "", false
	}
	intArg := func(key string, def int) (int, error) {
		v, ok := arg(key)
		if !ok {
			return def, nil
		}
		return strconv.Atoi(v)
	}
	switch d.Cmd {
	case "commit":
		idText, _ := arg("id")
		var id wire.CommitID
		if err := id.UnmarshalText([]byte(idText)); err != nil {
			return "", err
		}
		c, err := parseCommit(id, d.Input)
		if err != nil {
			return "", err
		}
		before := dump(s, true)
		r := s.Apply(c)
		if !r.Ack || r.Duplicate {
			if after := dump(s, true); after != before {
				return "", fmt.Errorf("state changed by %s", formatResult(r))
			}
		}
		return formatResult(r), nil
	case "state":
		return dump(s, true), nil
	case "delta":
		v, err := intArg("since", 0)
		if err != nil {
			return "", err
		}
		chs, ok := s.DeltaSince(uint64(v))
		if !ok {
			return "not in the log: send a snapshot\n", nil
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%d change(s)\n", len(chs))
		for _, ch := range chs {
			fmt.Fprintf(&b, "  version=%d origin=%v writes=%d\n", ch.Version, ch.Origin, len(ch.Writes))
		}
		return b.String(), nil
	case "snapshot":
		var lim wire.Limits
		var err error
		if lim.MaxFrameSize, err = intArg("frame", 0); err != nil {
			return "", err
		}
		if lim.MaxObjects, err = intArg("objects", 0); err != nil {
			return "", err
		}
		if lim.MaxElements, err = intArg("elements", 0); err != nil {
			return "", err
		}
		chunks := s.Snapshot(lim)
		var b strings.Builder
		for i, ch := range chunks {
			fmt.Fprintf(&b, "chunk %d more=%t bytes=%d\n", i, ch.More, len(wire.AppendMessage(nil, &ch)))
			for _, o := range ch.Objects {
				fmt.Fprintf(&b, "  %v %v class=%d", o.ID, o.Kind, o.Class)
				switch o.Kind {
				case wire.ObjectVar:
					fmt.Fprintf(&b, " value=%v", o.Value)
				case wire.ObjectCounter:
					fmt.Fprintf(&b, " counter=%d", o.Counter)
				}
				for _, f := range o.Fields {
					fmt.Fprintf(&b, " f%d=%v", f.ID, f.Value)
				}
				for _, e := range o.Entries {
					fmt.Fprintf(&b, " %v:%v", e.Key, e.Value)
				}
				for _, x := range o.Elems {
					fmt.Fprintf(&b, " %v", x)
				}
				b.WriteString("\n")
			}
		}
		l, err := Load("copy", Config{}, s.Version(), chunks)
		if err != nil {
			return "", err
		}
		if got, want := dump(l, false), dump(s, false); got != want {
			return "", fmt.Errorf("load round trip differs:\n%s\nwant\n%s", got, want)
		}
		b.WriteString("load round trip: equal\n")
		return b.String(), nil
	}
	return "", fmt.Errorf("unknown command %q", d.Cmd)
}

func parseID(s string) (wire.ObjectID, error) {
	var id wire.ObjectID
	err := id.UnmarshalText([]byte(s))
	return id, err
}

func parseValue(s string) wire.Value {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return wire.Int(i)
	}
	return wire.String(s)
}

var kindsByName = map[string]wire.ObjectKind{
	"record": wire.ObjectRecord, "var": wire.ObjectVar, "counter": wire.ObjectCounter,
	"map": wire.ObjectMap, "set": wire.ObjectSet, "list": wire.ObjectList, "bogus": 9,
}

func parseCommit(id wire.CommitID, input string) (*wire.Commit, error) {
	c := &wire.Commit{ID: id}
	for _, line := range strings.Split(input, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if err := parseLine(c, f); err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
	}
	return c, nil
}

func parseLine(c *wire.Commit, f []string) error {
	need := func(n int) error {
		if len(f) < n {
			return fmt.Errorf("want %d words", n)
		}
		return nil
	}
	num := func(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }
	if f[0] == "dep" {
		if err := need(2); err != nil {
			return err
		}
		var d wire.CommitID
		if err := d.UnmarshalText([]byte(f[1])); err != nil {
			return err
		}
		c.Deps = append(c.Deps, d)
		return nil
	}
	if err := need(2); err != nil {
		return err
	}
	if f[0] == "read" {
		if err := need(4); err != nil {
			return err
		}
		obj, err := parseID(f[2])
		if err != nil {
			return err
		}
		at, ok := strings.CutPrefix(f[len(f)-1], "@")
		if !ok {
			return fmt.Errorf("want @version last")
		}
		r := wire.Read{Object: obj}
		if r.Version, err = num(at); err != nil {
			return err
		}
		switch f[1] {
		case "whole":
		case "field":
			r.Kind = wire.ReadField
			n, err := num(f[3])
			if err != nil {
				return err
			}
			r.Field = uint32(n)
		case "key":
			r.Kind, r.Key = wire.ReadKey, parseValue(f[3])
		case "index":
			r.Kind = wire.ReadIndex
			if r.Index, err = num(f[3]); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown read kind %q", f[1])
		}
		c.Reads = append(c.Reads, r)
		return nil
	}
	obj, err := parseID(f[1])
	if err != nil {
		return err
	}
	op := wire.Op{Object: obj}
	switch f[0] {
	case "create":
		if err := need(3); err != nil {
			return err
		}
		op.Kind, op.ObjectKind = wire.OpCreate, kindsByName[f[2]]
		for _, kv := range f[3:] {
			k, v, _ := strings.Cut(kv, "=")
			if k == "class" {
				cl, err := num(v)
				if err != nil {
					return err
				}
				op.Class = uint32(cl)
				continue
			}
			n, err := num(strings.TrimPrefix(k, "f"))
			if err != nil {
				return err
			}
			op.Fields = append(op.Fields, wire.Field{ID: uint32(n), Value: parseValue(v)})
		}
	case "remove":
		op.Kind = wire.OpRemove
	case "set", "put", "lset":
		if err := need(4); err != nil {
			return err
		}
		op.Value = parseValue(f[3])
		switch f[0] {
		case "set":
			op.Kind = wire.OpSetField
			n, err := num(f[2])
			if err != nil {
				return err
			}
			op.Field = uint32(n)
		case "put":
			op.Kind, op.Key = wire.OpMapPut, parseValue(f[2])
		case "lset":
			op.Kind = wire.OpListSet
			if op.Index, err = num(f[2]); err != nil {
				return err
			}
		}
	case "var", "add", "del", "sadd", "srem":
		if err := need(3); err != nil {
			return err
		}
		switch f[0] {
		case "var":
			op.Kind, op.Value = wire.OpVarSet, parseValue(f[2])
		case "add":
			op.Kind = wire.OpCounterAdd
			if op.Delta, err = strconv.ParseInt(f[2], 10, 64); err != nil {
				return err
			}
		case "del":
			op.Kind, op.Key = wire.OpMapDelete, parseValue(f[2])
		case "sadd":
			op.Kind, op.Key = wire.OpSetAdd, parseValue(f[2])
		case "srem":
			op.Kind, op.Key = wire.OpSetRemove, parseValue(f[2])
		}
	case "append":
		op.Kind = wire.OpListAppend
		for _, v := range f[2:] {
			op.Values = append(op.Values, parseValue(v))
		}
	default:
		return fmt.Errorf("unknown op %q", f[0])
	}
	c.Writes = append(c.Writes, op)
	return nil
}
