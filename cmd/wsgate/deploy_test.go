package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestShippedUnitWorks: deploy/wsgate.service starts what `make install`
// installs, with flags the binary takes, on the example configuration it
// installs; its Documentation= is a file the install puts there; it is
// Type=notify, which the gateway speaks.
func TestShippedUnitWorks(t *testing.T) {
	unit := readRepoFile(t, "deploy/wsgate.service")
	makefile := readRepoFile(t, "Makefile")
	if !strings.Contains(unit, "\nType=notify\n") {
		t.Error("the unit is not Type=notify")
	}
	doc := regexp.MustCompile(`(?m)^Documentation=file://(\S+)$`).FindStringSubmatch(unit)
	if doc == nil || !strings.HasPrefix(doc[1], "/usr/local/share/doc/wsgate/") ||
		!strings.Contains(makefile, "docs/"+filepath.Base(doc[1])) || !strings.Contains(makefile, "PREFIX ?= /usr/local") {
		t.Errorf("Documentation=%v is not a file make install puts there", doc)
	}
	// ExecStart, its continuation lines joined, with the example
	// configuration in place of the installed one.
	exec := regexp.MustCompile(`(?s)\nExecStart=(.*?[^\\])\n`).FindStringSubmatch(unit)
	if exec == nil {
		t.Fatal("no ExecStart")
	}
	args := strings.Fields(strings.ReplaceAll(exec[1], "\\\n", " "))
	if args[0] != "/usr/local/bin/wsgate" {
		t.Errorf("ExecStart runs %s", args[0])
	}
	example := filepath.Join("..", "..", "deploy", "wsgate.yaml")
	for i, a := range args {
		if a == "/etc/wsgate/wsgate.yaml" {
			args[i] = example
		}
	}
	if code, _, errOut := check(t, args[1:]...); code != 0 {
		t.Errorf("wsgate check %v: exit %d: %s", args[1:], code, errOut)
	}
	if !strings.Contains(unit, "ExecStartPre=/usr/local/bin/wsgate check -config /etc/wsgate/wsgate.yaml") {
		t.Error("the unit does not check its configuration before starting")
	}
}

func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
