package builtins

import (
	"fmt"
	"sort"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// attrs is a read-only bag of attributes with registered methods: the shape
// of most vscript values (exec results, responses, the host).
type attrs struct {
	typ    string
	fields map[string]starlark.Value
	str    string // what str() shows; "" means the default <typ>
}

var _ starlark.HasAttrs = (*attrs)(nil)

func (a *attrs) String() string {
	if a.str != "" {
		return a.str
	}
	return "<" + a.typ + ">"
}
func (a *attrs) Type() string          { return a.typ }
func (a *attrs) Freeze()               {}
func (a *attrs) Truth() starlark.Bool  { return true }
func (a *attrs) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: %s", a.typ) }

func (a *attrs) Attr(name string) (starlark.Value, error) {
	if v, ok := a.fields[name]; ok {
		return v, nil
	}
	if m := method(a.typ, name, a); m != nil {
		return m, nil
	}
	return nil, nil // Starlark reports "no .name field or method", with "did you mean"
}

func (a *attrs) AttrNames() []string {
	names := methodNames(a.typ)
	for k := range a.fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// strDict converts a Go map to a Starlark dict with sorted keys, so that its
// printed form is stable.
func strDict(m map[string]string) *starlark.Dict {
	d := starlark.NewDict(len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d.SetKey(starlark.String(k), starlark.String(m[k]))
	}
	return d
}

// plain globals every script has besides ours.
func init() {
	RegisterGlobal(Global{Name: "struct", Doc: "`struct(**kwargs)` makes an immutable value with the given fields, as in Bazel.",
		Value: func(*Env) starlark.Value { return starlark.NewBuiltin("struct", starlarkstruct.Make) }})
}
