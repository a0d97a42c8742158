// Package profile reads and writes sandlock profiles: TOML documents (and
// their JSON form, which the control socket's config verb answers with)
// in upstream Sandlock's sectioned schema. It knows the syntax and where
// every key was written; which sections and keys exist, and what they
// mean, is the root package's settings table.
package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Doc is a parsed profile: a tree of tables (map[string]any) whose leaves
// are string, int64, bool, float64, a TOML date or time, []any or a nested
// table, and the line of every key and table header, for errors.
type Doc struct {
	Tree  map[string]any
	lines map[string]int // dotted path → line
}

// Line returns the line where the key (or table) at path was written, or
// 0 if unknown (JSON).
func (d *Doc) Line(path ...string) int { return d.lines[strings.Join(path, "\x00")] }

// Error is a syntax error, with the line it is on.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// ParseTOML parses a TOML profile. The values are decoded by go-toml; the
// positions come from its parser, which reports the range of every key.
func ParseTOML(data []byte) (*Doc, error) {
	var tree map[string]any
	if err := toml.Unmarshal(data, &tree); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, _ := de.Position()
			return nil, &Error{Line: line, Msg: strings.TrimPrefix(de.Error(), "toml: ")}
		}
		return nil, &Error{Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	if tree == nil {
		tree = map[string]any{}
	}
	d := &Doc{Tree: tree, lines: map[string]int{}}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		n := p.Expression()
		switch n.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = d.key(&p, nil, n.Key())
		case unstable.KeyValue:
			d.keyValue(&p, table, n)
		}
	}
	if err := p.Error(); err != nil {
		// Unmarshal accepted the document: this cannot happen.
		return nil, &Error{Msg: err.Error()}
	}
	return d, nil
}

// key records the line of each prefix of a dotted key under prefix and
// returns the full path.
func (d *Doc) key(p *unstable.Parser, prefix []string, it unstable.Iterator) []string {
	path := append([]string(nil), prefix...)
	for it.Next() {
		k := it.Node()
		path = append(path, string(k.Data))
		id := strings.Join(path, "\x00")
		if _, seen := d.lines[id]; !seen {
			d.lines[id] = p.Shape(k.Raw).Start.Line
		}
	}
	return path
}

// keyValue records a key = value and, for an inline table, its keys.
func (d *Doc) keyValue(p *unstable.Parser, table []string, n *unstable.Node) {
	path := d.key(p, table, n.Key())
	if v := n.Value(); v.Kind == unstable.InlineTable {
		for it := v.Children(); it.Next(); {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				d.keyValue(p, path, c)
			}
		}
	}
}

// ParseJSON parses a profile in its JSON form. Numbers must be integers;
// null stands for an absent key.
func ParseJSON(data []byte) (*Doc, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree map[string]any
	if err := dec.Decode(&tree); err != nil {
		return nil, &Error{Msg: "JSON: " + err.Error()}
	}
	if dec.More() {
		return nil, &Error{Msg: "JSON: data after the profile object"}
	}
	t, err := fromJSON(tree)
	if err != nil {
		return nil, err
	}
	m, _ := t.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return &Doc{Tree: m, lines: map[string]int{}}, nil
}

// fromJSON turns json.Numbers into int64 (or float64, which no key takes)
// and drops nulls.
func fromJSON(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i, nil
		}
		f, err := v.Float64()
		if err != nil {
			return nil, &Error{Msg: fmt.Sprintf("JSON: bad number %s", v)}
		}
		return f, nil
	case []any:
		out := make([]any, 0, len(v))
		for _, e := range v {
			c, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			if e == nil {
				continue
			}
			c, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	}
	return v, nil
}

// TypeName names a value's type for errors.
func TypeName(v any) string {
	switch v := v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case []map[string]any:
		return "an array of tables"
	case map[string]any:
		return "a table"
	case nil:
		return "nothing"
	default:
		_ = v
		return "a date or time"
	}
}
