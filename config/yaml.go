package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ParseYAML reads a configuration. An unknown key is an error (a typo
// must not silently become a default), and so is a value of the wrong
// kind; durations are Go duration strings ("5s", "250ms"). Every error
// names its line and, where it is about one value, the field and the
// value.
func ParseYAML(data []byte) (*GatewayConfig, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%w: the document is empty", ErrInvalid)
	}
	var c GatewayConfig
	if err := checkYAML(doc.Content[0], reflect.TypeOf(c), ""); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := doc.Decode(&c); err != nil { // checked above: not expected
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return &c, nil
}

// checkYAML walks n, the YAML for a value of type t at path (a field
// name as Compile's errors spell it), and returns the first key t does
// not have or the first value that does not fit its field, with its line.
// The decoder finds the same faults but names neither the field nor, for
// a key, the value.
func checkYAML(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.ShortTag() == "!!null" {
		return nil // the field keeps its zero value
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return misfit(n, path, "a mapping")
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			if key.ShortTag() == "!!merge" { // <<: *anchor, or a list of them
				merged := []*yaml.Node{value}
				if value.Kind == yaml.SequenceNode {
					merged = value.Content
				}
				for _, m := range merged {
					if err := checkYAML(m, t, path); err != nil {
						return err
					}
				}
				continue
			}
			field, ok := yamlField(t, key.Value)
			if !ok {
				return fmt.Errorf("line %d: %s: unknown key", key.Line, join(path, key.Value))
			}
			if err := checkYAML(value, field.Type, join(path, key.Value)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return misfit(n, path, "a list")
		}
		for i, e := range n.Content {
			if err := checkYAML(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	default:
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			return misfit(n, path, kindName(t))
		}
	}
	return nil
}

// yamlField is t's field for the YAML key.
func yamlField(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name) // the decoder's default
		}
		if name == key && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// misfit is the error for n, at path, which is not what its field takes.
func misfit(n *yaml.Node, path, want string) error {
	if path == "" {
		path = "the document"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return fmt.Errorf("line %d: %s is a mapping: want %s", n.Line, path, want)
	case yaml.SequenceNode:
		return fmt.Errorf("line %d: %s is a list: want %s", n.Line, path, want)
	}
	return fmt.Errorf("line %d: %s = %s: want %s", n.Line, path, strconv.Quote(n.Value), want)
}

// kindName says what a field of type t takes, for errors.
func kindName(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "a duration (like 5s or 250ms)"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.String:
		return "a string"
	}
	return "a " + t.String()
}

// join is the path of key in the mapping at path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
