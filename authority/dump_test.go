package authority

import (
	"fmt"
	"slices"
	"strings"

	"github.com/weft-stm/weft/wire"
)

// dump prints the whole state, versions included, in a stable order. With
// versions false it prints only what a snapshot carries.
func dump(s *Share, versions bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version %d\n", s.version)
	ids := make([]wire.ObjectID, 0, len(s.objects))
	for id := range s.objects {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareIDs)
	st := func(st stamp) string {
		if !versions {
			return ""
		}
		return fmt.Sprintf(" @%d", st.ver)
	}
	for _, id := range ids {
		o := s.objects[id]
		if o.removed {
			if versions {
				fmt.Fprintf(&b, "%v removed%s\n", id, st(o.life))
			}
			continue
		}
		fmt.Fprintf(&b, "%v %v class=%d", id, o.kind, o.class)
		if versions {
			fmt.Fprintf(&b, " created@%d whole@%d", o.life.ver, o.whole.ver)
		}
		switch o.kind {
		case wire.ObjectVar:
			fmt.Fprintf(&b, " = %v%s", o.val.val, st(o.val.st))
		case wire.ObjectCounter:
			fmt.Fprintf(&b, " = %d", o.counter)
		}
		b.WriteString("\n")
		switch o.kind {
		case wire.ObjectRecord:
			fs := make([]uint32, 0, len(o.fields))
			for f := range o.fields {
				fs = append(fs, f)
			}
			slices.Sort(fs)
			for _, f := range fs {
				fmt.Fprintf(&b, "  f%d = %v%s\n", f, o.fields[f].val, st(o.fields[f].st))
			}
		case wire.ObjectMap, wire.ObjectSet:
			ks := make([]wire.Value, 0, len(o.entries))
			for k, e := range o.entries {
				if e.present || versions {
					ks = append(ks, k)
				}
			}
			slices.SortFunc(ks, compareValues)
			for _, k := range ks {
				e := o.entries[k]
				switch {
				case !e.present:
					fmt.Fprintf(&b, "  %v absent%s\n", k, st(e.st))
				case o.kind == wire.ObjectMap:
					fmt.Fprintf(&b, "  %v: %v%s\n", k, e.val, st(e.st))
				default:
					fmt.Fprintf(&b, "  %v%s\n", k, st(e.st))
				}
			}
		case wire.ObjectList:
			for i, e := range o.list {
				fmt.Fprintf(&b, "  [%d] %v%s\n", i, e.val, st(e.st))
			}
		}
	}
	return b.String()
}

func formatRead(r wire.Read) string {
	switch r.Kind {
	case wire.ReadField:
		return fmt.Sprintf("field %v f%d @%d", r.Object, r.Field, r.Version)
	case wire.ReadKey:
		return fmt.Sprintf("key %v %v @%d", r.Object, r.Key, r.Version)
	case wire.ReadIndex:
		return fmt.Sprintf("index %v [%d] @%d", r.Object, r.Index, r.Version)
	}
	return fmt.Sprintf("whole %v @%d", r.Object, r.Version)
}

func formatResult(r Result) string {
	var b strings.Builder
	if r.Duplicate {
		b.WriteString("duplicate ")
	}
	if r.Ack {
		fmt.Fprintf(&b, "ack %v version=%d\n", r.ID, r.Version)
		return b.String()
	}
	fmt.Fprintf(&b, "abort %v %v: %s\n", r.ID, r.Code, r.Message)
	for _, c := range r.Conflicts {
		fmt.Fprintf(&b, "  conflict %s\n", formatRead(c))
	}
	return b.String()
}
