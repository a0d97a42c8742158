package profile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"unicode/utf8"
)

// Section is one [section] of a profile to write, its keys in order.
type Section struct {
	Name string
	Keys []KV
}

// KV is one key and its value: a string, int64, bool, []string, []int64,
// []any of those, or map[string]string.
type KV struct {
	Key   string
	Value any
}

// EncodeTOML writes sections as TOML, in order; empty sections are left
// out.
func EncodeTOML(sections []Section) ([]byte, error) {
	var b bytes.Buffer
	for _, s := range sections {
		if len(s.Keys) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "[%s]\n", s.Name)
		for _, kv := range s.Keys {
			b.WriteString(tomlKey(kv.Key))
			b.WriteString(" = ")
			if err := tomlValue(&b, kv.Value); err != nil {
				return nil, fmt.Errorf("[%s] %s: %w", s.Name, kv.Key, err)
			}
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), nil
}

// tomlKey writes a key bare when it can be, else quoted.
func tomlKey(k string) string {
	if k == "" {
		return `""`
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			s, _ := tomlString(k)
			return s
		}
	}
	return k
}

// tomlString quotes s as a TOML basic string. TOML text is UTF-8: a string
// that is not (a path can be any bytes) cannot be written.
func tomlString(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%q is not valid UTF-8, which TOML cannot hold", s)
	}
	var b bytes.Buffer
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

func tomlValue(b *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case string:
		s, err := tomlString(v)
		if err != nil {
			return err
		}
		b.WriteString(s)
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case []string:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := tomlValue(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case []int64:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.FormatInt(e, 10))
		}
		b.WriteByte(']')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := tomlValue(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]string:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) == 0 {
			b.WriteString("{}")
			return nil
		}
		b.WriteString("{ ")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			if !utf8.ValidString(k) {
				return fmt.Errorf("%q is not valid UTF-8, which TOML cannot hold", k)
			}
			b.WriteString(tomlKey(k))
			b.WriteString(" = ")
			if err := tomlValue(b, v[k]); err != nil {
				return err
			}
		}
		b.WriteString(" }")
	default:
		return fmt.Errorf("cannot write %T", v)
	}
	return nil
}

// EncodeJSON writes sections as one JSON object, sections and keys in
// order; empty sections are left out.
func EncodeJSON(sections []Section) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for _, s := range sections {
		if len(s.Keys) == 0 {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		k, _ := json.Marshal(s.Name)
		b.Write(k)
		b.WriteString(":{")
		for i, kv := range s.Keys {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(kv.Key)
			b.Write(k)
			b.WriteByte(':')
			v, err := json.Marshal(kv.Value)
			if err != nil {
				return nil, fmt.Errorf("[%s] %s: %w", s.Name, kv.Key, err)
			}
			b.Write(v)
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
