package sandlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sandlock-go/sandlock/internal/profile"
)

// A Profile is a Sandbox and the command to run in it, as a profile file
// holds them: TOML in upstream Sandlock's sectioned schema ([config],
// [determinism], [program], [filesystem], [network], [http], [syscalls],
// [limits]; see Settings for every key). Parsing is strict: an unknown
// section or key, a value of the wrong type, or one of the old flat
// top-level keys is an error naming the key and its line.
//
// A Profile remembers where each value came from, a key of its file or a
// flag given to Set, so that an error about a field can name what the user
// wrote (Source).
type Profile struct {
	Sandbox Sandbox
	// Program is the command: [program] exec, then [program] args; nil
	// when the profile names none.
	Program []string
	// DryRun is --dry-run: the run discards its copy-on-write branch and
	// reports the changes (see Sandbox.DryRun). A flag only, no key.
	DryRun bool

	file    string
	origins []origin
}

// origin is where one value of a field was written.
type origin struct{ field, value, src string }

// ParseProfile parses a TOML profile; filename names it in errors.
func ParseProfile(filename string, data []byte) (*Profile, error) {
	doc, err := profile.ParseTOML(data)
	if err != nil {
		return nil, syntaxError(filename, err)
	}
	return decode(filename, doc)
}

// parseProfileJSON parses a profile's JSON form (the control socket's
// config answer); source names it in errors.
func parseProfileJSON(source string, data []byte) (*Profile, error) {
	doc, err := profile.ParseJSON(data)
	if err != nil {
		return nil, syntaxError(source, err)
	}
	return decode(source, doc)
}

func syntaxError(file string, err error) error {
	var pe *profile.Error
	if errors.As(err, &pe) && pe.Line > 0 {
		return fmt.Errorf("sandlock: %s:%d: %s", file, pe.Line, pe.Msg)
	}
	return fmt.Errorf("sandlock: %s: %v", file, err)
}

// ProfileDir is where named profiles live: $XDG_CONFIG_HOME/sandlock/profiles,
// or ~/.config/sandlock/profiles.
func ProfileDir() (string, error) {
	if d := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "sandlock", "profiles"), nil
	}
	if h := os.Getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".config", "sandlock", "profiles"), nil
	}
	return "", errors.New("sandlock: no profile directory: neither XDG_CONFIG_HOME nor HOME is set")
}

// ProfilePath returns the file of the profile called name in ProfileDir.
// A name is a file name without its .toml: no '/', no NUL, not "." or "..".
func ProfilePath(name string) (string, error) {
	switch {
	case name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 250:
		return "", fmt.Errorf("sandlock: invalid profile name %q (a file name, without .toml)", name)
	}
	dir, err := ProfileDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name+".toml"), nil
}

// LoadProfile reads and parses the profile called name (ProfilePath).
func LoadProfile(name string) (*Profile, error) {
	path, err := ProfilePath(name)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sandlock: profile %q: %w", name, err)
	}
	return ParseProfile(path, data)
}

// Set applies a flag's value to the profile, as `sandlock run` does with
// the flags it is given after loading a profile: a repeatable setting
// gains the value, any other takes it. An error names the flag and value.
func (p *Profile) Set(s Setting, value string) error {
	if s.Flag == "" || s.set == nil {
		return fmt.Errorf("sandlock: %q is not a flag setting", s.Key)
	}
	src := "--" + s.Flag
	if err := s.Check(value); err != nil {
		return valueError(src, "flag", s.kind, value, err)
	}
	if err := s.set(p, value); err != nil {
		return valueError(src, "flag", s.kind, value, err)
	}
	p.note(s, value, src)
	return nil
}

func (p *Profile) note(s Setting, value, src string) {
	if s.Field == "" {
		return
	}
	p.origins = append(p.origins, origin{s.Field, value, src})
	if s.Flag == "user" {
		p.origins = append(p.origins, origin{"GID", value, src})
	}
}

// Source names where a field's value was written, for an error about it
// (a *FieldError's Field and Value): the flag ("--max-memory"), or the key
// with its file and line ("p.toml:4: [limits] memory"). For a list, value
// picks the entry; "" means the field's last one. It returns "" for a
// field the profile and flags did not set.
func (p *Profile) Source(field, value string) string {
	last := ""
	for i := len(p.origins) - 1; i >= 0; i-- {
		o := p.origins[i]
		if o.field != field {
			continue
		}
		if value != "" && o.value == value {
			return o.src
		}
		if last == "" {
			last = o.src
		}
	}
	return last
}

// valueError is a refused value, named as the user wrote it. what is
// "flag" or "key", for the advice to omit one.
func valueError(src, what string, k kind, v string, err error) error {
	var oe *omitError
	switch {
	case errors.Is(err, unsupported):
		return fmt.Errorf("sandlock: %s: %w", src, err)
	case errors.As(err, &oe):
		err = fmt.Errorf("%s (omit the %s %s)", oe.msg, what, oe.hint)
	}
	if k.numeric() || k == kBool {
		return fmt.Errorf("sandlock: %s %s: %w", src, v, err)
	}
	return fmt.Errorf("sandlock: %s %q: %w", src, v, err)
}

// entry is one key of a document, in a known section or at the top.
type entry struct {
	section, key string
	value        any
	line         int
	order        int // the table's order, for documents without lines
}

// decode applies a parsed document, key by key in the order they were
// written, so that the first error reported is the first in the file.
func decode(file string, doc *profile.Doc) (*Profile, error) {
	p := &Profile{file: file}
	loc := func(line int) string {
		if line > 0 {
			return file + ":" + strconv.Itoa(line) + ": "
		}
		return file + ": "
	}
	var entries []entry
	for name, v := range doc.Tree {
		line := doc.Line(name)
		if !slices.Contains(sections, name) {
			if _, isTable := v.(map[string]any); isTable {
				msg := fmt.Sprintf("unknown section [%s]", name)
				if s := closest(name, sections); s != "" {
					msg += fmt.Sprintf(" (did you mean [%s]?)", s)
				}
				entries = append(entries, entry{key: name, value: errors.New(msg), line: line, order: 1 << 30})
				continue
			}
			entries = append(entries, entry{key: name, value: v, line: line, order: 1 << 30})
			continue
		}
		table, ok := v.(map[string]any)
		if !ok {
			entries = append(entries, entry{section: name, value: fmt.Errorf("[%s] must be a table, not %s", name, profile.TypeName(v)), line: line})
			continue
		}
		for key, kv := range table {
			order := slices.IndexFunc(settings, func(s Setting) bool { return s.Key == name+"."+key })
			if order < 0 {
				order = 1 << 30
			}
			entries = append(entries, entry{section: name, key: key, value: kv, line: doc.Line(name, key), order: order})
		}
	}
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if a.line != b.line {
			return a.line < b.line
		}
		if a.order != b.order {
			return a.order < b.order
		}
		return a.section+"."+a.key < b.section+"."+b.key
	})
	for _, e := range entries {
		if err, ok := e.value.(error); ok {
			return nil, fmt.Errorf("sandlock: %s%v", loc(e.line), err)
		}
		s, ok := settingFor("", e.section+"."+e.key)
		if e.section == "" || !ok {
			msg := fmt.Sprintf("unknown key %q", e.key)
			if e.section != "" {
				msg += fmt.Sprintf(" in [%s]", e.section)
			}
			if sugg := suggest(e.section, e.key); sugg != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", sugg)
			}
			return nil, fmt.Errorf("sandlock: %s%s", loc(e.line), msg)
		}
		name := "[" + e.section + "] " + e.key
		values, err := keyValues(s.kind, e.value)
		if err != nil {
			return nil, fmt.Errorf("sandlock: %s%s: %v", loc(e.line), name, err)
		}
		src := loc(e.line) + name
		for _, v := range values {
			if err := s.Check(v); err != nil {
				return nil, valueError(src, "key", s.kind, v, err)
			}
			if err := s.set(p, v); err != nil {
				return nil, valueError(src, "key", s.kind, v, err)
			}
			p.note(s, v, src)
		}
	}
	if len(p.Program) > 0 && p.Program[0] == "" {
		return nil, fmt.Errorf("sandlock: %s[program] args without [program] exec", loc(doc.Line("program", "args")))
	}
	return p, nil
}

// keyValues turns a key's value into the values its flag would be given,
// checking its type.
func keyValues(k kind, v any) ([]string, error) {
	want := func(what string) error { return fmt.Errorf("want %s, not %s", what, profile.TypeName(v)) }
	elems := func(what string, each func(any) (string, bool)) ([]string, error) {
		arr, ok := v.([]any)
		if !ok {
			return nil, want("an array of " + what)
		}
		out := make([]string, 0, len(arr))
		for i, e := range arr {
			s, ok := each(e)
			if !ok {
				return nil, fmt.Errorf("want an array of %s; element %d is %s", what, i+1, profile.TypeName(e))
			}
			out = append(out, s)
		}
		return out, nil
	}
	str := func(e any) (string, bool) { s, ok := e.(string); return s, ok }
	num := func(e any) (string, bool) {
		n, ok := e.(int64)
		if !ok || n < 0 {
			return "", false
		}
		return strconv.FormatInt(n, 10), true
	}
	switch k {
	case kBool:
		if b, ok := v.(bool); ok {
			return []string{strconv.FormatBool(b)}, nil
		}
		return nil, want("true or false")
	case kString:
		if s, ok := v.(string); ok {
			return []string{s}, nil
		}
		return nil, want("a string")
	case kList:
		return elems("strings", str)
	case kUint8, kUint32, kUint64:
		if s, ok := v.(string); ok && k == kUint64 {
			// A number above TOML's signed 64 bits is written as a string.
			return []string{s}, nil
		}
		if n, ok := v.(int64); ok {
			if n < 0 {
				return nil, fmt.Errorf("%d: want a number from 0", n)
			}
			return []string{strconv.FormatInt(n, 10)}, nil
		}
		return nil, want("an integer")
	case kPortList:
		return elems("port numbers", num)
	case kCPUs, kGPUs:
		ids, err := elems("non-negative integers", num)
		if err != nil {
			return nil, err
		}
		if k == kGPUs && len(ids) == 0 {
			return []string{"all"}, nil
		}
		return []string{strings.Join(ids, ",")}, nil
	case kPorts:
		return elems("ports (integers, or strings such as \"9000-9005\" or \"*\")", func(e any) (string, bool) {
			if s, ok := e.(string); ok {
				return s, true
			}
			return num(e)
		})
	case kEnv:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, want("a table of strings")
		}
		keys := make([]string, 0, len(m))
		for key := range m {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		out := make([]string, 0, len(m))
		for _, key := range keys {
			s, ok := m[key].(string)
			if !ok {
				return nil, fmt.Errorf("want a table of strings; %s is %s", key, profile.TypeName(m[key]))
			}
			if key == "" || strings.ContainsRune(key, '=') {
				return nil, fmt.Errorf("%q cannot name a variable", key)
			}
			out = append(out, key+"="+s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot read %s", profile.TypeName(v))
}

// suggest finds the key an unknown one was likely meant to be: the same
// key in another section, upstream's old flat name of a key, or a close
// spelling in the same section.
func suggest(section, key string) string {
	var same []string
	for _, s := range settings {
		if s.Key == "" {
			continue
		}
		sec, k, _ := strings.Cut(s.Key, ".")
		if slices.Contains(s.old, key) {
			return "[" + sec + "] " + k
		}
		if k == key && sec != section {
			same = append(same, "["+sec+"] "+k)
		}
	}
	if len(same) == 1 {
		return same[0]
	}
	var candidates []string
	for _, s := range settings {
		sec, k, _ := strings.Cut(s.Key, ".")
		if s.Key != "" && (section == "" || sec == section) {
			candidates = append(candidates, k)
		}
	}
	if c := closest(key, candidates); c != "" {
		for _, s := range settings {
			sec, k, _ := strings.Cut(s.Key, ".")
			if k == c && (section == "" || sec == section) {
				return "[" + sec + "] " + k
			}
		}
	}
	return ""
}

// closest returns the candidate within two edits of word, if one is.
func closest(word string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(word, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sectioned renders the profile by section, as upstream orders it.
func (p *Profile) sectioned() []profile.Section {
	out := make([]profile.Section, len(sections))
	for i, name := range sections {
		out[i].Name = name
		for _, s := range settings {
			sec, key, _ := strings.Cut(s.Key, ".")
			if sec != name || s.get == nil {
				continue
			}
			if v := s.get(p); v != nil {
				out[i].Keys = append(out[i].Keys, profile.KV{Key: key, Value: v})
			}
		}
	}
	return out
}

// MarshalTOML renders the profile as a TOML profile, which ParseProfile
// reads back to the same Sandbox and Program. Unset settings are left out.
func (p *Profile) MarshalTOML() ([]byte, error) {
	b, err := profile.EncodeTOML(p.sectioned())
	if err != nil {
		return nil, fmt.Errorf("sandlock: %w", err)
	}
	return b, nil
}

// MarshalJSON renders the profile in its JSON form: the same sections and
// keys as MarshalTOML.
func (p *Profile) MarshalJSON() ([]byte, error) {
	return profile.EncodeJSON(p.sectioned())
}
