package build

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

// argScope resolves ARG values as Docker does. A build argument given to the
// build overrides a declared default; a stage sees only the ARGs it declares
// itself, and an ARG declared without a default in a stage takes the value
// of the same-named ARG before the first FROM.
type argScope struct {
	build map[string]string  // build_args given to the build
	meta  map[string]string  // meta ARGs (before the first FROM) that have a value
	stage map[string]*string // ARGs declared in this stage and their defaults
}

// values returns the ARGs visible in the stage that have a value.
func (a *argScope) values() map[string]string {
	out := map[string]string{}
	for name, def := range a.stage {
		if v, ok := a.build[name]; ok {
			out[name] = v
		} else if def != nil {
			out[name] = *def
		} else if v, ok := a.meta[name]; ok {
			out[name] = v
		}
	}
	return out
}

// evalMetaArgs computes the values of the ARGs before the first FROM, each
// default expanded with the ones before it. These values are all a FROM line
// can see.
func evalMetaArgs(steps []*Step, build map[string]string, lex *shell.Lex) (map[string]string, error) {
	meta := map[string]string{}
	for _, step := range steps {
		cmd, err := step.command()
		if err != nil {
			return nil, atLine(step, err)
		}
		arg := cmd.(*instructions.ArgCommand)
		env := shell.EnvsFromSlice(envList(meta))
		if err := arg.Expand(func(w string) (string, error) {
			out, _, err := lex.ProcessWord(w, env)
			return out, err
		}); err != nil {
			return nil, atLine(step, fmt.Errorf("ARG %s: %w: %w", step.Args, err, errdefs.ErrInvalid))
		}
		for _, kv := range arg.Args {
			switch v, ok := build[kv.Key]; {
			case ok:
				meta[kv.Key] = v
			case kv.Value != nil:
				meta[kv.Key] = *kv.Value
			default:
				delete(meta, kv.Key)
			}
		}
	}
	return meta, nil
}

// envList renders a map as sorted KEY=value entries.
func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// stageState is what one stage carries from step to step: the config being
// built, the ARGs in scope and whether the stage has set CMD itself.
type stageState struct {
	lex    *shell.Lex
	args   argScope
	config v1.Config
	// cmdSet records a non-empty CMD earlier in this stage: Docker's
	// ENTRYPOINT clears an inherited CMD but keeps one the stage set.
	cmdSet bool
}

func newStageState(lex *shell.Lex, build, meta map[string]string, base v1.Config) *stageState {
	cfg := cloneConfig(base)
	if _, ok := getEnv(&cfg, "PATH"); !ok {
		cfg.Env = append(cfg.Env, "PATH="+defaultPath)
	}
	return &stageState{
		lex:    lex,
		args:   argScope{build: build, meta: meta, stage: map[string]*string{}},
		config: cfg,
	}
}

// argEnv lists the ARG values a RUN sees as environment variables: the
// stage's ARGs with a value, except those an ENV of the same name hides.
// Sorted as Docker sorts them for the history line.
func (s *stageState) argEnv() []string {
	var out []string
	for k, v := range s.args.values() {
		if _, hidden := getEnv(&s.config, k); !hidden {
			out = append(out, k+"="+v)
		}
	}
	slices.Sort(out)
	return out
}

// env is the environment for variable expansion and for RUN.
func (s *stageState) env() []string {
	return append(slices.Clone(s.config.Env), s.argEnv()...)
}

func (s *stageState) expandWord(word string) (string, error) {
	out, _, err := s.lex.ProcessWord(word, shell.EnvsFromSlice(s.env()))
	return out, err
}

// action is what a step amounts to once expanded against the stage state.
// Applying a step updates the state's config at once; the executor then
// does the filesystem part, if any, and commits.
type action struct {
	// createdBy is the history line. For COPY and ADD it is left empty: it
	// includes the sources' content hash, known only once they are resolved.
	createdBy string
	// At most one of these is set; none for a config-only step.
	run     *RunSpec
	copy    *copySpec
	workdir string // WORKDIR: the directory to create if it is missing
}

// copySpec is an expanded COPY or ADD.
type copySpec struct {
	add   bool
	srcs  []string
	dest  string // as written (expanded); relative to WORKDIR if not absolute
	chown string
	from  string // --from: a stage name or index, or an image reference
}

// apply expands step against the state, updates the state's config and ARG
// scope as the step says, and returns what remains to be done.
func (s *stageState) apply(step *Step) (*action, error) {
	cmd, err := step.command()
	if err != nil {
		return nil, err
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok && step.Instruction != "RUN" {
		if err := ex.Expand(s.expandWord); err != nil {
			return nil, fmt.Errorf("%s %s: %w: %w", step.Instruction, step.Args, err, errdefs.ErrInvalid)
		}
	}
	cfg := cloneConfig(s.config)
	// nop finishes a config-only step; its history line reads
	// "/bin/sh -c #(nop)  ENV A=1" (two spaces: "#(nop) " is its own word).
	nop := func(comment string) (*action, error) {
		s.config = cfg
		return &action{createdBy: strings.Join(append(shellOf(&cfg), "#(nop) ", comment), " ")}, nil
	}
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		var b strings.Builder
		b.WriteString("ENV")
		for _, kv := range c.Env {
			b.WriteString(" " + kv.Key + "=" + kv.Value)
			setEnv(&cfg, kv.Key, kv.Value)
		}
		return nop(b.String())

	case *instructions.LabelCommand:
		var b strings.Builder
		b.WriteString("LABEL")
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			b.WriteString(" " + kv.Key + "=" + kv.Value)
			cfg.Labels[kv.Key] = kv.Value
		}
		return nop(b.String())

	case *instructions.MaintainerCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		cfg.Labels["maintainer"] = c.Maintainer
		return nop("MAINTAINER " + c.Maintainer)

	case *instructions.CmdCommand:
		cfg.Cmd = cmdLine(c.ShellDependantCmdLine, &cfg)
		if len(c.CmdLine) > 0 {
			s.cmdSet = true
		}
		return nop(fmt.Sprintf("CMD %q", cfg.Cmd))

	case *instructions.EntrypointCommand:
		cfg.Entrypoint = cmdLine(c.ShellDependantCmdLine, &cfg)
		if !s.cmdSet {
			cfg.Cmd = nil
		}
		return nop(fmt.Sprintf("ENTRYPOINT %q", cfg.Entrypoint))

	case *instructions.ExposeCommand:
		var ports []string
		env := shell.EnvsFromSlice(s.env())
		for _, p := range c.Ports {
			// EXPOSE alone splits an expanded word into several
			// ports: EXPOSE $PORTS with PORTS="80 443".
			words, err := s.lex.ProcessWords(p, env)
			if err != nil {
				return nil, fmt.Errorf("EXPOSE %s: %w: %w", p, err, errdefs.ErrInvalid)
			}
			ports = append(ports, words...)
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range ports {
			keys, err := parsePort(p)
			if err != nil {
				return nil, fmt.Errorf("EXPOSE %s: %w", p, err)
			}
			for _, k := range keys {
				cfg.ExposedPorts[k] = struct{}{}
			}
		}
		return nop("EXPOSE " + strings.Join(ports, " "))

	case *instructions.UserCommand:
		cfg.User = c.User
		return nop("USER " + c.User)

	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			// Docker accepts a relative VOLUME here and fails when a
			// container is made; saying so now is kinder.
			if !path.IsAbs(v) {
				return nil, fmt.Errorf("VOLUME %s: path must be absolute: %w", v, errdefs.ErrInvalid)
			}
			cfg.Volumes[v] = struct{}{}
		}
		return nop(fmt.Sprintf("VOLUME %v", c.Volumes))

	case *instructions.StopSignalCommand:
		if !validSignal(c.Signal) {
			return nil, fmt.Errorf("STOPSIGNAL %s: invalid signal: %w", c.Signal, errdefs.ErrInvalid)
		}
		cfg.StopSignal = c.Signal
		return nop("STOPSIGNAL " + c.Signal)

	case *instructions.ShellCommand:
		cfg.Shell = slices.Clone(c.Shell)
		return nop(fmt.Sprintf("SHELL %v", c.Shell))

	case *instructions.ArgCommand:
		var words []string
		for _, kv := range c.Args {
			s.args.stage[kv.Key] = kv.Value
			w := kv.Key
			if kv.Value != nil {
				w += "=" + *kv.Value
			}
			words = append(words, w)
		}
		return nop("ARG " + strings.Join(words, " "))

	case *instructions.WorkdirCommand:
		wd := c.Path
		if !path.IsAbs(wd) {
			wd = path.Join("/", cfg.WorkingDir, wd)
		}
		wd = path.Clean(wd)
		cfg.WorkingDir = wd
		s.config = cfg
		return &action{
			createdBy: strings.Join(append(shellOf(&cfg), "#(nop) WORKDIR "+wd), " "),
			workdir:   wd,
		}, nil

	case *instructions.RunCommand:
		argv := cmdLine(c.ShellDependantCmdLine, &cfg)
		if len(argv) == 0 {
			return nil, fmt.Errorf("RUN: no command given: %w", errdefs.ErrInvalid)
		}
		args := s.argEnv()
		// Docker records the build args a RUN saw ahead of the command,
		// "|1 V=2 /bin/sh -c make", so that they are part of its cache key.
		saved := argv
		if len(args) > 0 {
			saved = append(append([]string{"|" + strconv.Itoa(len(args))}, args...), argv...)
		}
		return &action{
			createdBy: strings.Join(saved, " "),
			run: &RunSpec{
				Args:       argv,
				Env:        append(slices.Clone(cfg.Env), args...),
				User:       cfg.User,
				WorkingDir: cfg.WorkingDir,
			},
		}, nil

	case *instructions.CopyCommand:
		// Expand leaves --from alone; BuildKit expands it, so that
		// --from=$BUILDER works, and so do we.
		from, err := s.expandWord(c.From)
		if err != nil {
			return nil, fmt.Errorf("COPY --from=%s: %w: %w", c.From, err, errdefs.ErrInvalid)
		}
		return &action{copy: &copySpec{srcs: c.SourcePaths, dest: c.DestPath, chown: c.Chown, from: from}}, nil

	case *instructions.AddCommand:
		return &action{copy: &copySpec{add: true, srcs: c.SourcePaths, dest: c.DestPath, chown: c.Chown}}, nil
	}
	return nil, fmt.Errorf("%s: not supported: %w", step.Instruction, errdefs.ErrInvalid)
}

// cmdLine turns the shell or exec form of RUN, CMD and ENTRYPOINT into argv.
func cmdLine(c instructions.ShellDependantCmdLine, cfg *v1.Config) []string {
	if len(c.CmdLine) == 0 {
		return []string{}
	}
	if c.PrependShell {
		return append(shellOf(cfg), c.CmdLine...)
	}
	return slices.Clone(c.CmdLine)
}

// copyCreatedBy is the history line of COPY and ADD:
// "/bin/sh -c #(nop) COPY --chown=1:1file:<hash> in /dest ". The missing
// space after the chown flag and the trailing space are Docker's own.
func copyCreatedBy(shellArgs []string, instr, chown, srcHash, dest string) string {
	if chown != "" {
		chown = "--chown=" + chown
	}
	comment := fmt.Sprintf("%s %s%s in %s ", instr, chown, srcHash, dest)
	return strings.Join(append(slices.Clone(shellArgs), "#(nop) "+comment), " ")
}

// parsePort reads one EXPOSE word: 80, 80/udp or a range 8000-8010/tcp.
// It returns the ExposedPorts keys it stands for.
func parsePort(spec string) ([]string, error) {
	ports, proto, hasProto := strings.Cut(spec, "/")
	if !hasProto {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid protocol %q: %w", proto, errdefs.ErrInvalid)
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	if !isRange {
		hi = lo
	}
	start, err1 := strconv.ParseUint(lo, 10, 16)
	end, err2 := strconv.ParseUint(hi, 10, 16)
	if err := errors.Join(err1, err2); err != nil || start == 0 || end < start {
		return nil, fmt.Errorf("invalid port %q: %w", ports, errdefs.ErrInvalid)
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

// validSignal accepts what Docker's STOPSIGNAL does: a number, or a name
// with or without SIG, including RTMIN+n and RTMAX-n.
func validSignal(sig string) bool {
	if n, err := strconv.Atoi(sig); err == nil {
		return n > 0 && n <= 64
	}
	name := strings.TrimPrefix(strings.ToUpper(sig), "SIG")
	for _, rt := range []struct {
		prefix string
		base   int
		sign   int
	}{{"RTMIN", 34, 1}, {"RTMAX", 64, -1}} {
		rest, ok := strings.CutPrefix(name, rt.prefix)
		if !ok {
			continue
		}
		if rest == "" {
			return true
		}
		n, err := strconv.Atoi(rest) // "+3" or "-3"
		return err == nil && n*rt.sign >= 0 && n*rt.sign <= 15
	}
	return unix.SignalNum("SIG"+name) != 0
}

// atLine prefixes err with the step's Dockerfile line.
func atLine(step *Step, err error) error {
	return fmt.Errorf("dockerfile line %d: %w", step.Line, err)
}
