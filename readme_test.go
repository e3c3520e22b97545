package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// measured is a figure stated as a measurement: a time or a ratio.
var measured = regexp.MustCompile(`\b\d+(\.\d+)?(-\d+(\.\d+)?)? ?(ms|s|x)\b`)

// reproducer names a command of this repository that prints figures.
var reproducer = regexp.MustCompile("`?(Benchmark[A-Z][A-Za-z]*|make bench|make demo|time make [a-z]+|go test [^`]*)`?")

// TestReadmeFiguresNameTheirCommand: every figure the README gives as a
// measurement comes with the command that prints it. Measurements are the
// figures in the "Measured" section (its tables row by row, its paragraphs
// one by one) and, anywhere else, in a sentence that says what something
// costs or takes; settings and protocol constants elsewhere are not.
func TestReadmeFiguresNameTheirCommand(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "\n## Measured\n")
	if i < 0 {
		t.Fatal("README.md has no Measured section")
	}
	rest, section := text[:i], text[i:]
	if j := strings.Index(section[1:], "\n## "); j >= 0 {
		rest += section[j+1:]
		section = section[:j+1]
	}
	check := func(chunk string) {
		if measured.MatchString(chunk) && !reproducer.MatchString(chunk) {
			t.Errorf("README.md states %q without the command that prints it:\n%s", measured.FindString(chunk), chunk)
		}
	}
	for _, para := range strings.Split(section, "\n\n") {
		if strings.HasPrefix(strings.TrimSpace(para), "|") {
			for _, row := range strings.Split(para, "\n") {
				check(row)
			}
			continue
		}
		check(para)
	}
	for _, para := range strings.Split(rest, "\n\n") {
		for _, sentence := range regexp.MustCompile(`[.;]\s`).Split(para, -1) {
			if regexp.MustCompile(`\b(costs?|took|takes about|resumes? at|measured)\b`).MatchString(sentence) {
				check(sentence)
			}
		}
	}
}
