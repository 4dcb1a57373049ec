package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/signet-oss/signet/client/signed"
)

// exitCodeEntries parses exitCodeTable into the explanation of each code,
// its wrapped lines joined.
func exitCodeEntries(t *testing.T) map[string]string {
	t.Helper()
	entry := regexp.MustCompile(`^\s*(\d+)  (.*)$`)
	out := map[string]string{}
	last := ""
	for _, line := range strings.Split(exitCodeTable, "\n") {
		if m := entry.FindStringSubmatch(line); m != nil {
			last = m[1]
			out[last] = m[2]
		} else if strings.TrimSpace(line) != "" {
			out[last] += " " + strings.TrimSpace(line)
		}
	}
	return out
}

// TestExitCodesAgreeWithREADME: README.md's table of exit codes is the one
// `trustctl help` shows, code for code and word for word.
func TestExitCodesAgreeWithREADME(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, "### Exit codes\n")
	if i < 0 {
		t.Fatal("README.md has no ### Exit codes section")
	}
	row := regexp.MustCompile(`(?m)^\| (\d+) \| (.*) \|$`)
	section := readme[i:]
	if j := strings.Index(section[4:], "\n#"); j >= 0 {
		section = section[:j+4]
	}
	inREADME := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		inREADME[m[1]] = m[2]
	}
	inHelp := exitCodeEntries(t)
	for code, text := range inHelp {
		if inREADME[code] != text {
			t.Errorf("exit code %s:\n help:   %s\n README: %s", code, text, inREADME[code])
		}
	}
	for code := range inREADME {
		if _, ok := inHelp[code]; !ok {
			t.Errorf("README.md lists exit code %s, which trustctl's help does not", code)
		}
	}
	// Every code a command can exit with is in the table.
	for _, c := range []int{signed.CodeVerified, signed.CodeOther, signed.CodeNotSigned, signed.CodeMismatch,
		signed.CodeExpired, signed.CodeUnreachable, signed.CodePolicy, codeInterrupted} {
		if _, ok := inHelp[strconv.Itoa(c)]; !ok {
			t.Errorf("exit code %d is not in the table", c)
		}
	}
	if !strings.Contains(exitCodesHelp, exitCodeTable) || !strings.Contains(pushExitCodes, exitCodeTable) {
		t.Error("the help of verify or push does not show the table of exit codes")
	}
}
