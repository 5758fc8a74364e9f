package build

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"vscript/engine/errdefs"
)

// Plan is a parsed Dockerfile: the ARGs before the first FROM, then the
// stages in order. A Plan holds no build arguments and no image state, so one
// Plan can be built any number of times.
type Plan struct {
	// MetaArgs are the ARG instructions before the first FROM. Their values
	// are visible to FROM lines only, unless a stage declares them again.
	MetaArgs []*Step
	Stages   []*Stage
	// Warnings are the parser's remarks (empty continuation lines), which
	// Docker prints before building.
	Warnings []string

	escape rune
}

// Stage is one FROM and the steps that follow it.
type Stage struct {
	// Name is the lower-cased AS name, "" if the stage has none.
	Name string
	// From is the base as written, before ARG expansion: an image
	// reference, an earlier stage's name, or "scratch".
	From string
	// Line is the FROM's line in the Dockerfile (1-based).
	Line int
	// Text is the FROM instruction as written.
	Text  string
	Steps []*Step
}

// Step is one instruction after FROM (or a meta ARG).
type Step struct {
	// Instruction is the upper-cased keyword: "RUN", "COPY", ...
	Instruction string
	// Line is where the instruction starts in the Dockerfile (1-based).
	Line int
	// Text is the instruction as written, continuation lines joined; Docker
	// prints it as "Step 3/7 : <Text>".
	Text string
	// Args is Text without its keyword, as error messages quote it
	// ("RUN false: exit code 1").
	Args string

	node *parser.Node
}

// ChangesFS reports whether the step can add a filesystem layer: ADD, COPY
// and RUN always do; WORKDIR does when its directory does not exist yet.
// Every other step changes only the image config and gets an empty_layer
// history entry.
func (s *Step) ChangesFS() bool {
	switch s.Instruction {
	case "ADD", "COPY", "RUN", "WORKDIR":
		return true
	}
	return false
}

// command parses the step's node afresh. Expansion rewrites a command in
// place, so every build works on its own copy and the Plan stays reusable.
func (s *Step) command() (instructions.Command, error) {
	return instructions.ParseCommand(s.node)
}

// TotalSteps counts the steps Docker numbers in "Step N/M": meta ARGs, every
// FROM and every instruction of every stage.
func (p *Plan) TotalSteps() int {
	n := len(p.MetaArgs)
	for _, st := range p.Stages {
		n += 1 + len(st.Steps)
	}
	return n
}

// supported lists the instructions Build executes, upper-cased.
var supported = map[string]bool{
	"FROM": true, "ADD": true, "COPY": true, "RUN": true, "VOLUME": true,
	"CMD": true, "ENTRYPOINT": true, "ENV": true, "ARG": true, "WORKDIR": true,
	"EXPOSE": true, "LABEL": true, "USER": true, "SHELL": true,
	"STOPSIGNAL": true, "MAINTAINER": true,
}

// known but refused: Docker has them, vscript does not implement them.
var refused = map[string]string{
	"HEALTHCHECK": "HEALTHCHECK is not supported (vscript containers have no health checks)",
	"ONBUILD":     "ONBUILD is not supported",
}

// Parse reads a Dockerfile and checks everything that can be checked without
// build arguments or images: instruction names, flags, argument counts, the
// order of FROM and stage names. Errors name the Dockerfile line:
//
//	dockerfile line 4: unknown instruction: COPPY
func Parse(r io.Reader) (*Plan, error) {
	res, err := parser.Parse(r)
	if err != nil {
		return nil, parseError(0, err)
	}
	p := &Plan{escape: res.EscapeToken}
	for _, w := range res.Warnings {
		p.Warnings = append(p.Warnings, w.Short)
	}
	stageNames := map[string]int{}
	for _, node := range res.AST.Children {
		keyword := strings.ToUpper(node.Value)
		line := node.StartLine
		if msg, ok := refused[keyword]; ok {
			return nil, parseError(line, errors.New(msg))
		}
		if !supported[keyword] {
			return nil, parseError(line, fmt.Errorf("unknown instruction: %s", node.Value))
		}
		if err := checkHeredoc(node); err != nil {
			return nil, parseError(line, err)
		}
		parsed, err := instructions.ParseInstruction(node)
		if err != nil {
			return nil, parseError(line, err)
		}
		text := strings.TrimSpace(node.Original)
		if stage, ok := parsed.(*instructions.Stage); ok {
			if stage.Platform != "" {
				return nil, parseError(line, errors.New("FROM --platform is not supported (vscript builds for the host's platform)"))
			}
			if stage.Name != "" {
				if prev, dup := stageNames[stage.Name]; dup {
					return nil, parseError(line, fmt.Errorf("duplicate stage name %q (first used on line %d)", stage.Name, prev))
				}
				stageNames[stage.Name] = line
			}
			p.Stages = append(p.Stages, &Stage{Name: stage.Name, From: stage.BaseName, Line: line, Text: text})
			continue
		}
		cmd, ok := parsed.(instructions.Command)
		if !ok {
			return nil, parseError(line, fmt.Errorf("%s: not an instruction", node.Value))
		}
		if err := checkFlags(keyword, cmd); err != nil {
			return nil, parseError(line, err)
		}
		step := &Step{Instruction: keyword, Line: line, Text: text, Args: argsText(node), node: node}
		if len(p.Stages) == 0 {
			if keyword != "ARG" {
				return nil, parseError(line, fmt.Errorf("%s before the first FROM: a Dockerfile must start with FROM (only ARG may come before it)", keyword))
			}
			p.MetaArgs = append(p.MetaArgs, step)
			continue
		}
		cur := p.Stages[len(p.Stages)-1]
		cur.Steps = append(cur.Steps, step)
	}
	if len(p.Stages) == 0 {
		return nil, fmt.Errorf("dockerfile: no FROM instruction: %w", errdefs.ErrInvalid)
	}
	return p, nil
}

// parseError formats err as "dockerfile line N: ..." and classes it invalid.
// line 0 means "take it from the error", which the buildkit parser attaches.
func parseError(line int, err error) error {
	if line == 0 {
		var le *parser.LocationError
		if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
			line = le.Locations[0][0].Start.Line
		}
	}
	// The buildkit errors carry a location and a stack; their text is the
	// bare message, which is what a user needs.
	msg := err.Error()
	if line > 0 {
		return fmt.Errorf("dockerfile line %d: %s: %w", line, msg, errdefs.ErrInvalid)
	}
	return fmt.Errorf("dockerfile: %s: %w", msg, errdefs.ErrInvalid)
}

// checkHeredoc refuses here-documents (RUN <<EOF, COPY <<EOF), a BuildKit
// extension that vscript's builder, like Docker's legacy one, does not run.
func checkHeredoc(node *parser.Node) error {
	if len(node.Heredocs) > 0 {
		return fmt.Errorf("%s: here-documents (<<EOF) are not supported", strings.ToUpper(node.Value))
	}
	return nil
}

// checkFlags refuses the flags buildkit's parser knows but Build does not
// implement, so they never get silently ignored.
func checkFlags(keyword string, cmd instructions.Command) error {
	var bad []string
	switch c := cmd.(type) {
	case *instructions.RunCommand:
		for _, f := range c.FlagsUsed {
			bad = append(bad, "--"+f)
		}
	case *instructions.CopyCommand:
		if c.Chmod != "" {
			bad = append(bad, "--chmod")
		}
		if c.Link {
			bad = append(bad, "--link")
		}
		if c.Parents {
			bad = append(bad, "--parents")
		}
		if len(c.ExcludePatterns) > 0 {
			bad = append(bad, "--exclude")
		}
	case *instructions.AddCommand:
		if c.Chmod != "" {
			bad = append(bad, "--chmod")
		}
		if c.Link {
			bad = append(bad, "--link")
		}
		if c.Checksum != "" {
			bad = append(bad, "--checksum")
		}
		if c.KeepGitDir != nil {
			bad = append(bad, "--keep-git-dir")
		}
		if c.Unpack != nil {
			bad = append(bad, "--unpack")
		}
		if len(c.ExcludePatterns) > 0 {
			bad = append(bad, "--exclude")
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s %s: not supported", keyword, strings.Join(bad, " "))
	}
	return nil
}

// argsText is the instruction as written minus its keyword.
func argsText(node *parser.Node) string {
	s := strings.TrimSpace(node.Original)
	if len(s) >= len(node.Value) && strings.EqualFold(s[:len(node.Value)], node.Value) {
		s = s[len(node.Value):]
	}
	return strings.TrimSpace(s)
}
