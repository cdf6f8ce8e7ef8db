// hclcheck parses HCL files with HashiCorp's own parser (hcl/v2 hclsyntax)
// and exits 1 naming file:line:column of every syntax error.
//
// In a Nomad job spec it also checks the HCL files the job renders: the
// heredoc `data` of each template block whose destination ends in ".hcl"
// (the autoscaler's agent config). consul-template actions ({{ ... }}) are
// not HCL: a line made only of actions is dropped, any other action is read
// as the number 0, so `bind_port = {{ env "X" }}` and `"{{ .v }}"` stay valid.
// Lines that are HCL template directives (%{ if }) are dropped too: both
// branches are checked.
package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

var action = regexp.MustCompile(`\{\{.*?\}\}`)

// An HCL template directive (%{ if ... }, %{ else }, %{ endif }) on a line of
// its own: the job's HCL picks the lines of the rendered file.
var directive = regexp.MustCompile(`^\s*%\{[^}]*\}\s*$`)

func report(diags hcl.Diagnostics) int {
	errors := 0
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		errors++
		where := "?"
		if d.Subject != nil {
			where = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		fmt.Fprintf(os.Stderr, "%s: %s: %s\n", where, d.Summary, d.Detail)
	}
	return errors
}

// withoutActions turns a consul-template into text HCL can parse; lines keep
// their numbers so errors point at the right line of the job file.
func withoutActions(text string) string {
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		if strings.TrimSpace(action.ReplaceAllString(line, "")) == "" || directive.MatchString(line) {
			lines[i] = ""
		} else {
			lines[i] = action.ReplaceAllString(line, "0")
		}
	}
	return strings.Join(lines, "\n")
}

func literal(body *hclsyntax.Body, name string) string {
	attr, ok := body.Attributes[name]
	if !ok {
		return ""
	}
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() || !v.IsKnown() || v.IsNull() {
		return ""
	}
	if v.Type().FriendlyName() != "string" {
		return ""
	}
	return v.AsString()
}

// renderedHCL checks the agent-config templates inside one parsed job file.
func renderedHCL(src []byte, body *hclsyntax.Body, filename string) int {
	errors := 0
	for _, block := range body.Blocks {
		if block.Type == "template" && strings.HasSuffix(literal(block.Body, "destination"), ".hcl") {
			attr, ok := block.Body.Attributes["data"]
			if !ok {
				continue
			}
			if _, heredoc := attr.Expr.(*hclsyntax.TemplateExpr); !heredoc {
				continue // file("...") and the like: checked as files of their own
			}
			r := attr.Expr.Range()
			text := string(src[r.Start.Byte:r.End.Byte])
			// Drop the <<-EOT line and the closing marker; pad so that line
			// numbers match the job file.
			first := strings.Index(text, "\n")
			last := strings.LastIndex(strings.TrimRight(text, " \t\n"), "\n")
			if first < 0 || last <= first {
				continue
			}
			inner := strings.Repeat("\n", r.Start.Line) + withoutActions(text[first+1:last])
			name := filename + " (template " + literal(block.Body, "destination") + ")"
			_, diags := hclsyntax.ParseConfig([]byte(inner), name, hcl.Pos{Line: 1, Column: 1})
			errors += report(diags)
			continue
		}
		errors += renderedHCL(src, block.Body, filename)
	}
	return errors
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hclcheck FILE.hcl...")
		os.Exit(2)
	}
	parser := hclparse.NewParser()
	failed := 0
	for _, path := range os.Args[1:] {
		src, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			failed++
			continue
		}
		file, diags := parser.ParseHCL(src, path)
		errors := report(diags)
		if errors == 0 {
			errors += renderedHCL(src, file.Body.(*hclsyntax.Body), path)
		}
		if errors > 0 {
			failed++
		} else {
			fmt.Printf("%s: ok\n", path)
		}
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "hclcheck: %d of %d file(s) have errors\n", failed, len(os.Args)-1)
		os.Exit(1)
	}
}
