package gogen

import (
	"fmt"
	"strings"

	"github.com/weft-stm/weft/schema"
)

// initialisms are the words Go spells in capitals (as golint did): a field
// user_id becomes UserID, not UserId.
var initialisms = map[string]bool{
	"acl": true, "api": true, "ascii": true, "cpu": true, "css": true, "dns": true,
	"eof": true, "guid": true, "html": true, "http": true, "https": true, "id": true,
	"ip": true, "json": true, "lhs": true, "qps": true, "ram": true, "rhs": true,
	"rpc": true, "sla": true, "smtp": true, "sql": true, "ssh": true, "tcp": true,
	"tls": true, "ttl": true, "udp": true, "ui": true, "uid": true, "uuid": true,
	"uri": true, "url": true, "utf8": true, "vm": true, "xml": true, "xmpp": true,
	"xsrf": true, "xss": true,
}

// FieldName returns the Go name of a field: its lower_snake_case schema name
// in MixedCaps, initialisms in capitals (old_email is OldEmail, avatar_url
// is AvatarURL).
func FieldName(f *schema.Field) string { return exported(f.Name) }

func exported(snake string) string {
	var b strings.Builder
	for word := range strings.SplitSeq(snake, "_") {
		if initialisms[word] {
			b.WriteString(strings.ToUpper(word))
			continue
		}
		b.WriteString(strings.ToUpper(word[:1]))
		b.WriteString(word[1:])
	}
	return b.String()
}

// receiver returns the receiver name of a class's methods: its initial in
// lower case, unless that is a parameter name of the generated methods.
func receiver(c *schema.Class) string {
	r := strings.ToLower(c.Name[:1])
	if r == "v" {
		return "o"
	}
	return r
}

// vetMethods are method names go vet expects a standard signature for
// (the stdmethods check); a getter by that name would fail vet.
var vetMethods = map[string]bool{
	"As": true, "Format": true, "GobDecode": true, "GobEncode": true, "Is": true,
	"MarshalJSON": true, "MarshalXML": true, "Peek": true, "ReadByte": true,
	"ReadFrom": true, "ReadRune": true, "Scan": true, "Seek": true,
	"UnmarshalJSON": true, "UnmarshalXML": true, "UnreadByte": true,
	"UnreadRune": true, "Unwrap": true, "WriteByte": true, "WriteTo": true,
}

// objectNames are the names a class type already has: the embedded
// *stm.Object, the methods it promotes that generated code relies on, and
// the generated Observe.
var objectNames = map[string]string{
	"Object":    "the embedded *stm.Object",
	"Class":     "the method promoted from *stm.Object",
	"ID":        "the method promoted from *stm.Object",
	"Workspace": "the method promoted from *stm.Object, which the observers use",
	"Observe":   "the generated method that observes the whole object",
}

// nameTable finds two generated declarations with the same Go name.
type nameTable struct {
	names map[string]nameUse
	errs  schema.ErrorList
}

type nameUse struct {
	pos  schema.Pos
	what string
}

func newNameTable() *nameTable { return &nameTable{names: map[string]nameUse{}} }

// declare records name for the declaration what at pos. It reports a
// collision with an earlier one, and returns false, if there is one.
func (t *nameTable) declare(name string, pos schema.Pos, what string) bool {
	if prev, ok := t.names[name]; ok {
		t.errorf(pos, "%s would be named %s, like %s (at %s)", what, name, prev.what, prev.pos)
		return false
	}
	t.names[name] = nameUse{pos, what}
	return true
}

func (t *nameTable) errorf(pos schema.Pos, format string, args ...any) {
	t.errs = append(t.errs, &schema.Error{Pos: pos, Msg: "go: " + fmt.Sprintf(format, args...)})
}
