package build

import (
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"vscript/engine/errdefs"
)

func TestParsePlan(t *testing.T) {
	df := `# syntax comment
ARG BASE=busybox
FROM $BASE AS Build
RUN echo one \
    two
COPY --chown=www-data:www-data a b /dst/

from scratch
copy --from=build /x /x
CMD ["/x"]
`
	p, err := Parse(strings.NewReader(df))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.MetaArgs) != 1 || p.MetaArgs[0].Text != "ARG BASE=busybox" || p.MetaArgs[0].Line != 2 {
		t.Errorf("meta args = %+v", p.MetaArgs)
	}
	if len(p.Stages) != 2 {
		t.Fatalf("stages = %d", len(p.Stages))
	}
	s0, s1 := p.Stages[0], p.Stages[1]
	if s0.Name != "build" || s0.From != "$BASE" || s0.Line != 3 || s0.Text != "FROM $BASE AS Build" {
		t.Errorf("stage 0 = %+v", s0)
	}
	if s1.Name != "" || s1.From != "scratch" || s1.Line != 8 {
		t.Errorf("stage 1 = %+v", s1)
	}
	type row struct {
		instr, text, args string
		line              int
		fs                bool
	}
	var got []row
	for _, st := range p.Stages {
		for _, s := range st.Steps {
			got = append(got, row{s.Instruction, s.Text, s.Args, s.Line, s.ChangesFS()})
		}
	}
	want := []row{
		{"RUN", "RUN echo one     two", "echo one     two", 4, true},
		{"COPY", "COPY --chown=www-data:www-data a b /dst/", "--chown=www-data:www-data a b /dst/", 6, true},
		{"COPY", "copy --from=build /x /x", "--from=build /x /x", 9, true},
		{"CMD", `CMD ["/x"]`, `["/x"]`, 10, false},
	}
	if len(got) != len(want) {
		t.Fatalf("steps = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if n := p.TotalSteps(); n != 7 {
		t.Errorf("TotalSteps = %d, want 7", n)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ df, want string }{
		{"FROM busybox\nRUN true\n\nCOPPY a /b\n", "dockerfile line 4: unknown instruction: COPPY"},
		{"FROM busybox\nHEALTHCHECK CMD true\n", "dockerfile line 2: HEALTHCHECK is not supported"},
		{"FROM busybox\nONBUILD RUN true\n", "dockerfile line 2: ONBUILD is not supported"},
		{"RUN true\nFROM busybox\n", "dockerfile line 1: RUN before the first FROM"},
		{"ARG A=1\n", "dockerfile: no FROM instruction"},
		{"# only a comment\n", "dockerfile line 1: file with no instructions"},
		{"", "dockerfile: file with no instructions"},
		{"FROM busybox\nCOPY --chmod=644 a /b\n", "dockerfile line 2: COPY --chmod: not supported"},
		{"FROM busybox\nADD --link --checksum=sha256:00 a /b\n", "dockerfile line 2: ADD --link --checksum: not supported"},
		{"FROM busybox\nRUN --mount=type=cache,target=/c true\n", "dockerfile line 2: RUN --mount: not supported"},
		{"FROM --platform=linux/arm64 busybox\n", "dockerfile line 1: FROM --platform is not supported"},
		{"FROM busybox AS a\nFROM busybox AS A\n", `dockerfile line 2: duplicate stage name "a" (first used on line 1)`},
		{"FROM busybox AS 1x\n", "dockerfile line 1: invalid name for build stage"},
		{"FROM busybox\nRUN <<EOF\necho hi\nEOF\n", "dockerfile line 2: RUN: here-documents (<<EOF) are not supported"},
		{"FROM busybox\nCOPY --frm=x a /b\n", "dockerfile line 2: unknown flag: --frm (did you mean from?)"},
		{"FROM busybox\nSHELL /bin/bash -c\n", "dockerfile line 2: SHELL requires the arguments to be in JSON form"},
		{"FROM busybox\nCOPY onlyone\n", "dockerfile line 2: COPY requires at least two arguments"},
		{"FROM busybox\nWORKDIR\n", "dockerfile line 2: WORKDIR requires exactly one argument"},
		{"FROM busybox\nENV\n", "dockerfile line 2: ENV requires at least one argument"},
		{"FROM a b\n", "dockerfile line 1: FROM requires either one or three arguments"},
	}
	for _, tt := range tests {
		_, err := Parse(strings.NewReader(tt.df))
		if err == nil {
			t.Errorf("%q parsed", tt.df)
			continue
		}
		if !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%q: error %q, want prefix %q", tt.df, err, tt.want)
		}
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%q: error is not ErrInvalid", tt.df)
		}
	}
}

// FuzzParse checks that no input makes Parse, or applying a parsed stage's
// config steps, panic.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		dataPacked,
		"ARG A=1\nFROM ${A:-busybox} AS b\nENV X=$A Y=\"q q\"\nRUN [\"a\"]\nCOPY --from=b --chown=1:2 a* /x/\n",
		"# escape=`\nFROM x\nRUN a `\n  b\nEXPOSE 80-90/udp\nSTOPSIGNAL RTMIN+1\n",
		"FROM x\nLABEL \"a b\"=c d=\"e\\\"f\"\nVOLUME [\"/v\"]\nWORKDIR ../..\nSHELL [\"sh\"]\nCMD [\"x\"\n",
		"FROM x\nENTRYPOINT\nCMD\nUSER\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, df string) {
		if len(df) > 1<<14 {
			return
		}
		p, err := Parse(strings.NewReader(df))
		if err != nil {
			return
		}
		if len(p.Stages) == 0 {
			t.Fatal("a plan without stages parsed")
		}
		// Applying steps needs no backend; errors are fine, panics not.
		st := newStageState(shell.NewLex(p.escape), map[string]string{"A": "1"}, nil, v1.Config{})
		for _, step := range p.Stages[0].Steps {
			if _, err := st.apply(step); err != nil {
				return
			}
		}
	})
}
