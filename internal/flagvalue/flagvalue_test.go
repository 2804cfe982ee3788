package flagvalue

import (
	"flag"
	"slices"
	"testing"
)

func TestStringListRepeats(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var l StringList
	fs.Var(&l, "backend", "repeatable")
	if err := fs.Parse([]string{"-backend", "ws://a/", "-backend", "ws://b/"}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"ws://a/", "ws://b/"}; !slices.Equal(l, want) || l.String() != "ws://a/,ws://b/" {
		t.Fatalf("got %q (%s), want %q", l, l.String(), want)
	}
}
