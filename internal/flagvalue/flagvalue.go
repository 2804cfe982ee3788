// Package flagvalue holds the flag.Value types the binaries share.
// Values are filled by flag parsing on the caller's goroutine and read
// after it.
package flagvalue

import "strings"

// StringList is a repeatable string flag: each occurrence adds one value,
// in order.
type StringList []string

// String joins the values with commas (flag's default text).
func (l *StringList) String() string { return strings.Join(*l, ",") }

// Set adds v.
func (l *StringList) Set(v string) error { *l = append(*l, v); return nil }
