// Package gogen generates Go code from a checked schema: for each class, a
// type with typed getters and setters bound to a transaction, a constructor,
// typed collection fields and observers, on top of the records of package
// stm. The weft gen command runs it.
//
// # What a class becomes
//
// For a schema class User (id 1), the generated file declares:
//
//   - type User struct{ *stm.Object }: a typed view of an object. The zero
//     User is a nil reference.
//   - var UserClass = stm.NewClass("User", 1, ...): the class, and var
//     UserFields, a struct of its field handles (*stm.VarField[string],
//     *stm.SetField[*stm.Object], ...).
//   - func NewUser(ws *stm.Workspace) User, and AsUser(*stm.Object) to view an
//     untyped object as a User.
//   - For a scalar or reference field name: Name(tx) and SetName(tx, v);
//     give stm.Auto as tx to run the call as an automatic transaction
//     (not on an object of a client's share: a client refuses a write
//     outside the share's transactions, and the call panics). A
//     reference field takes and returns the target class's type (stored as
//     an *stm.Object); a bytes field copies the slice both ways.
//   - For a collection field: an accessor without tx returning the stm
//     collection: *stm.Counter, *stm.Set[E], *stm.List[E], *stm.Map[K, V].
//     A collection of references returns a typed view instead (UserSet,
//     UserList, UserMap[key]) whose methods take and return User.
//   - Observers: Observe(fn) for the whole object and ObserveName(fn) per
//     field, on the object's own workspace, returning the
//     *stm.Subscription to close.
//
// Field names become MixedCaps (old_email: OldEmail, avatar_url: AvatarURL).
// A deprecated class or field gets a "Deprecated:" paragraph, which editors
// and staticcheck show at every use.
//
// # Names Go does not allow
//
// Generate fails, with the schema position, when two generated names
// collide (a field set_name beside a field name; a class UserSet beside a
// set<ref User>), when a field's getter would hide Object, Class, ID or
// Observe, and when it would take a name go vet checks the signature of
// (Format, WriteTo, ...).
package gogen
