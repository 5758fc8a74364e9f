package build

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"vscript/engine/errdefs"
)

var busyboxConfig = v1.Config{Env: []string{"PATH=" + defaultPath}, Cmd: []string{"sh"}}

// applyStage applies every step of the Dockerfile's last stage to base, as
// the executor does before any filesystem work, and returns the stage state
// and the steps' history lines.
func applyStage(t *testing.T, df string, args map[string]string, base v1.Config) (*stageState, []string, error) {
	t.Helper()
	plan, err := Parse(strings.NewReader(df))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if args == nil {
		args = map[string]string{}
	}
	lex := shell.NewLex(plan.escape)
	meta, err := evalMetaArgs(plan.MetaArgs, args, lex)
	if err != nil {
		return nil, nil, err
	}
	st := newStageState(lex, args, meta, base)
	var lines []string
	for _, step := range plan.Stages[len(plan.Stages)-1].Steps {
		act, err := st.apply(step)
		if err != nil {
			return st, lines, err
		}
		lines = append(lines, act.createdBy)
	}
	return st, lines, nil
}

func TestArgEnvSubstitution(t *testing.T) {
	tests := []struct {
		name string
		df   string
		args map[string]string
		want map[string]string // ENV values in the final config
	}{
		{"arg default", "FROM x\nARG V=1\nENV A=$V", nil, map[string]string{"A": "1"}},
		{"build arg overrides default", "FROM x\nARG V=1\nENV A=$V", map[string]string{"V": "2"}, map[string]string{"A": "2"}},
		{"build arg for an arg without default", "FROM x\nARG V\nENV A=x${V}x", map[string]string{"V": "2"}, map[string]string{"A": "x2x"}},
		{"undeclared build arg is invisible", "FROM x\nENV A=x${V}x", map[string]string{"V": "2"}, map[string]string{"A": "xx"}},
		{"meta arg invisible in stage", "ARG V=1\nFROM x\nENV A=${V:-unset}", nil, map[string]string{"A": "unset"}},
		{"meta arg redeclared takes its value", "ARG V=1\nFROM x\nARG V\nENV A=$V", nil, map[string]string{"A": "1"}},
		{"meta arg redeclared with build arg", "ARG V=1\nFROM x\nARG V\nENV A=$V", map[string]string{"V": "3"}, map[string]string{"A": "3"}},
		{"stage default beats meta default", "ARG V=1\nFROM x\nARG V=2\nENV A=$V", nil, map[string]string{"A": "2"}},
		{"meta defaults chain", "ARG A=1\nARG B=${A}2\nFROM x\nARG B\nENV R=$B", nil, map[string]string{"R": "12"}},
		{"arg scope ends with the stage", "FROM x\nARG V=1\nFROM x\nENV A=${V:-none}", nil, map[string]string{"A": "none"}},
		{"ENV beats ARG", "FROM x\nARG V=1\nENV V=2\nENV A=$V", nil, map[string]string{"A": "2", "V": "2"}},
		{"one ENV line sees the old values", "FROM x\nENV A=1\nENV A=2 B=$A", nil, map[string]string{"A": "2", "B": "1"}},
		{"base image env expands", "FROM x\nENV P=$PATH:/opt", nil, map[string]string{"P": defaultPath + ":/opt"}},
		{"quotes", `FROM x` + "\n" + `ENV A="hello world" B=a\ b C='$NOPE'`, nil, map[string]string{"A": "hello world", "B": "a b", "C": "$NOPE"}},
		{"legacy ENV syntax", "FROM x\nENV A hello world", nil, map[string]string{"A": "hello world"}},
		{"escaped dollar", `FROM x` + "\n" + `ENV A=\$V`, nil, map[string]string{"A": "$V"}},
		{"default and alternative forms", "FROM x\nENV E=\nENV A=${E:-d} B=${E-d} C=${A:+set}", nil, map[string]string{"A": "d", "B": "", "C": ""}},
		{"escape directive", "# escape=`\nFROM x\nENV A=`$V", nil, map[string]string{"A": "$V"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _, err := applyStage(t, tt.df, tt.args, busyboxConfig)
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range tt.want {
				if got, ok := getEnv(&st.config, k); !ok || got != want {
					t.Errorf("%s = %q (set %v), want %q", k, got, ok, want)
				}
			}
		})
	}
}

func TestArgsInRun(t *testing.T) {
	tests := []struct {
		name      string
		df        string
		args      map[string]string
		createdBy string
		env       []string
	}{
		{"no args", "FROM x\nRUN make", nil, "/bin/sh -c make", []string{"PATH=" + defaultPath}},
		{"declared arg", "FROM x\nARG V=1\nRUN make", nil, "|1 V=1 /bin/sh -c make", []string{"PATH=" + defaultPath, "V=1"}},
		{"build arg", "FROM x\nARG V=1\nARG W\nRUN make", map[string]string{"W": "2"}, "|2 V=1 W=2 /bin/sh -c make", []string{"PATH=" + defaultPath, "V=1", "W=2"}},
		{"valueless arg stays out", "FROM x\nARG V\nRUN make", nil, "/bin/sh -c make", []string{"PATH=" + defaultPath}},
		{"ENV hides the arg", "FROM x\nARG V=1\nENV V=2\nRUN make", nil, "/bin/sh -c make", []string{"PATH=" + defaultPath, "V=2"}},
		{"exec form", "FROM x\nRUN [\"echo\", \"a b\"]", nil, "echo a b", []string{"PATH=" + defaultPath}},
		{"RUN is not expanded by the builder", "FROM x\nARG V=1\nRUN echo $V", nil, "|1 V=1 /bin/sh -c echo $V", []string{"PATH=" + defaultPath, "V=1"}},
		{"SHELL", "FROM x\nSHELL [\"/bin/bash\", \"-eu\", \"-c\"]\nRUN make", nil, "/bin/bash -eu -c make", []string{"PATH=" + defaultPath}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Parse(strings.NewReader(tt.df))
			if err != nil {
				t.Fatal(err)
			}
			args := tt.args
			if args == nil {
				args = map[string]string{}
			}
			st := newStageState(shell.NewLex('\\'), args, nil, v1.Config{})
			var act *action
			for _, step := range plan.Stages[0].Steps {
				if act, err = st.apply(step); err != nil {
					t.Fatal(err)
				}
			}
			if act.createdBy != tt.createdBy {
				t.Errorf("created_by = %q, want %q", act.createdBy, tt.createdBy)
			}
			if !reflect.DeepEqual(act.run.Env, tt.env) {
				t.Errorf("env = %q, want %q", act.run.Env, tt.env)
			}
		})
	}
}

func TestConfigEvolution(t *testing.T) {
	tests := []struct {
		name string
		df   string
		base v1.Config
		want v1.Config
	}{
		{"ENTRYPOINT clears an inherited CMD", "FROM x\nENTRYPOINT [\"/e\"]", busyboxConfig,
			v1.Config{Env: busyboxConfig.Env, Entrypoint: []string{"/e"}}},
		{"ENTRYPOINT keeps the stage's own CMD", "FROM x\nCMD [\"a\"]\nENTRYPOINT [\"/e\"]", busyboxConfig,
			v1.Config{Env: busyboxConfig.Env, Entrypoint: []string{"/e"}, Cmd: []string{"a"}}},
		{"CMD after ENTRYPOINT resets nothing", "FROM x\nENTRYPOINT [\"/e\"]\nCMD [\"a\"]", busyboxConfig,
			v1.Config{Env: busyboxConfig.Env, Entrypoint: []string{"/e"}, Cmd: []string{"a"}}},
		{"empty CMD does not count as set", "FROM x\nCMD []\nENTRYPOINT [\"/e\"]", busyboxConfig,
			v1.Config{Env: busyboxConfig.Env, Entrypoint: []string{"/e"}}},
		{"shell forms", "FROM x\nENTRYPOINT exec /e\nCMD echo hi", v1.Config{},
			v1.Config{Env: []string{"PATH=" + defaultPath}, Entrypoint: []string{"/bin/sh", "-c", "exec /e"}, Cmd: []string{"/bin/sh", "-c", "echo hi"}}},
		{"SHELL applies to later shell forms", "FROM x\nSHELL [\"/bin/ash\", \"-c\"]\nCMD run", v1.Config{},
			v1.Config{Env: []string{"PATH=" + defaultPath}, Shell: []string{"/bin/ash", "-c"}, Cmd: []string{"/bin/ash", "-c", "run"}}},
		{"ports, labels, volumes, user, signal, workdir", `FROM x
EXPOSE 80 443/udp 8000-8001
LABEL a=b "c d"="e f"
MAINTAINER Jane <jane@example.com>
VOLUME ["/a", "/b"]
VOLUME /c
USER www-data:www-data
STOPSIGNAL SIGQUIT
WORKDIR /srv
WORKDIR www`, v1.Config{},
			v1.Config{
				Env:          []string{"PATH=" + defaultPath},
				ExposedPorts: map[string]struct{}{"80/tcp": {}, "443/udp": {}, "8000/tcp": {}, "8001/tcp": {}},
				Labels:       map[string]string{"a": "b", "c d": "e f", "maintainer": "Jane <jane@example.com>"},
				Volumes:      map[string]struct{}{"/a": {}, "/b": {}, "/c": {}},
				User:         "www-data:www-data",
				StopSignal:   "SIGQUIT",
				WorkingDir:   "/srv/www",
			}},
		{"expanded WORKDIR, USER, LABEL, EXPOSE", "FROM x\nARG P=\"8080 9090\"\nENV D=/app U=nobody\nWORKDIR $D/sub\nWORKDIR ../x\nUSER $U\nLABEL dir=$D\nEXPOSE $P", v1.Config{},
			v1.Config{
				Env:          []string{"PATH=" + defaultPath, "D=/app", "U=nobody"},
				WorkingDir:   "/app/x",
				User:         "nobody",
				Labels:       map[string]string{"dir": "/app"},
				ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9090/tcp": {}},
			}},
		{"base PATH is kept", "FROM x\nUSER 1", v1.Config{Env: []string{"PATH=/bin"}},
			v1.Config{Env: []string{"PATH=/bin"}, User: "1"}},
		{"ENV replaces in place", "FROM x\nENV PATH=/opt:$PATH B=2", v1.Config{Env: []string{"A=1", "PATH=/bin"}},
			v1.Config{Env: []string{"A=1", "PATH=/opt:/bin", "B=2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := cloneConfig(tt.base)
			st, _, err := applyStage(t, tt.df, nil, tt.base)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(st.config, tt.want) {
				t.Errorf("config =\n%+v\nwant\n%+v", st.config, tt.want)
			}
			if !reflect.DeepEqual(tt.base, base) {
				t.Errorf("the base config was modified: %+v", tt.base)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ df, want string }{
		{"FROM x\nEXPOSE abc", "EXPOSE abc: invalid port"},
		{"FROM x\nEXPOSE 80/icmp", `EXPOSE 80/icmp: invalid protocol "icmp"`},
		{"FROM x\nEXPOSE 90-80", "EXPOSE 90-80: invalid port"},
		{"FROM x\nVOLUME data", "VOLUME data: path must be absolute"},
		{"FROM x\nSTOPSIGNAL SIGNOPE", "STOPSIGNAL SIGNOPE: invalid signal"},
		{"FROM x\nSTOPSIGNAL RTMIN-1", "STOPSIGNAL RTMIN-1: invalid signal"},
		{"FROM x\nSTOPSIGNAL 0", "STOPSIGNAL 0: invalid signal"},
		{"FROM x\nRUN []", "RUN: no command given"},
	}
	for _, tt := range tests {
		_, _, err := applyStage(t, tt.df, nil, v1.Config{})
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%q: error %v, want %q (invalid)", tt.df, err, tt.want)
		}
	}
	for _, ok := range []string{"9", "KILL", "sigterm", "SIGRTMIN", "RTMIN+3", "SIGRTMAX-1"} {
		if _, _, err := applyStage(t, "FROM x\nSTOPSIGNAL "+ok, nil, v1.Config{}); err != nil {
			t.Errorf("STOPSIGNAL %s: %v", ok, err)
		}
	}
}

func TestHistoryLines(t *testing.T) {
	tests := []struct{ instr, want string }{
		{"ENV A=1 B=2", "/bin/sh -c #(nop)  ENV A=1 B=2"},
		{"ENV A hello world", "/bin/sh -c #(nop)  ENV A=hello world"},
		{`CMD ["sh"]`, `/bin/sh -c #(nop)  CMD ["sh"]`},
		{"CMD echo hi", `/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo hi"]`},
		{`ENTRYPOINT ["/e", "x"]`, `/bin/sh -c #(nop)  ENTRYPOINT ["/e" "x"]`},
		{"VOLUME /a /b", "/bin/sh -c #(nop)  VOLUME [/a /b]"},
		{"EXPOSE 80/tcp 443", "/bin/sh -c #(nop)  EXPOSE 443 80/tcp"},
		{`LABEL a=b c="d e"`, "/bin/sh -c #(nop)  LABEL a=b c=d e"},
		{"USER www-data", "/bin/sh -c #(nop)  USER www-data"},
		{"WORKDIR /app", "/bin/sh -c #(nop) WORKDIR /app"},
		{"ARG V=1 W", "/bin/sh -c #(nop)  ARG V=1 W"},
		{"STOPSIGNAL SIGTERM", "/bin/sh -c #(nop)  STOPSIGNAL SIGTERM"},
		{"MAINTAINER me", "/bin/sh -c #(nop)  MAINTAINER me"},
		{`SHELL ["/bin/bash", "-c"]`, "/bin/bash -c #(nop)  SHELL [/bin/bash -c]"},
		{"RUN echo hi", "/bin/sh -c echo hi"},
		{"COPY a b", ""}, // finished by the executor, see copyCreatedBy
	}
	for _, tt := range tests {
		_, lines, err := applyStage(t, "FROM x\n"+tt.instr, nil, v1.Config{})
		if err != nil {
			t.Errorf("%s: %v", tt.instr, err)
			continue
		}
		if lines[0] != tt.want {
			t.Errorf("%s: created_by = %q, want %q", tt.instr, lines[0], tt.want)
		}
	}
	if got, want := copyCreatedBy(defaultShell, "ADD", "", "dir:abc", "/usr/local/apache2/htdocs"),
		"/bin/sh -c #(nop) ADD dir:abc in /usr/local/apache2/htdocs "; got != want {
		t.Errorf("ADD created_by = %q, want %q", got, want)
	}
	if got, want := copyCreatedBy([]string{"/bin/bash", "-c"}, "COPY", "1:1", "file:abc", "/x"),
		"/bin/bash -c #(nop) COPY --chown=1:1file:abc in /x "; got != want {
		t.Errorf("COPY created_by = %q, want %q", got, want)
	}
}

func TestTailBuffer(t *testing.T) {
	var tb tailBuffer
	for i := 0; i < 1000; i++ {
		tb.Write([]byte(strings.Repeat("x", i%7) + "\n"))
	}
	tb.Write([]byte("last line\n"))
	lines := strings.Split(tb.String(), "\n")
	if len(lines) != tailLines || lines[len(lines)-1] != "last line" {
		t.Errorf("tail = %d lines ending %q", len(lines), lines[len(lines)-1])
	}
}
