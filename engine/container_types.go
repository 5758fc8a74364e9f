package engine

import "time"

// RunSpec is a container to create, in `docker run` terms.
type RunSpec struct {
	Image       string
	Cmd         []string // nil: the image's CMD
	Entrypoint  []string // nil: the image's ENTRYPOINT; non-nil empty: none
	Name        string   // "" picks a Docker-style random (seeded) name
	Network     string   // "bridge" (default), "none", "host", "container:NAME", or a network name
	Aliases     []string
	IP          string
	Ports       []string // `docker run -p` syntax
	Volumes     []string // `docker run -v` syntax; a volume object arrives as "NAME:/path"
	VolumesFrom []string
	Env         []string // KEY=VALUE
	Workdir     string
	User        string
	Hostname    string
	AutoRemove  bool // --rm
	ReadOnly    bool
	TTY         bool
	Memory      int64   // bytes; 0 unset
	PidsLimit   int64   // 0 unset
	CPUs        float64 // 0 unset
	Labels      map[string]string
}

// ContainerInfo is a container's state as builtins show it.
type ContainerInfo struct {
	ID       string
	Name     string
	Image    string // the reference it was created from
	ImageID  string
	Status   string // created, running, exited
	ExitCode int
	Pid      int // 0 unless running
	Hostname string
	// Networks lists the container's networks in attachment order with
	// their addresses.
	Networks []NetworkAddr
	Created  time.Time
}

// NetworkAddr is one network a container is attached to.
type NetworkAddr struct {
	Network string
	IP      string
}

// ContainerExecSpec is a program to run in a running container.
type ContainerExecSpec struct {
	ExecSpec
	User string
	TTY  bool
}

// Change is one line of `docker diff`: Kind is "A", "C" or "D".
type Change struct {
	Kind string
	Path string
}

// ImageInfo is an image as builtins show it.
type ImageInfo struct {
	ID     string // sha256:...
	Ref    string // name:tag it was asked by, or its first tag
	Tags   []string
	Layers []string // layer digests, bottom first
	Config ImageConfig
	Size   int64
}

// ImageConfig is the part of an image config DESIGN exposes as .config.
type ImageConfig struct {
	Cmd          []string
	Entrypoint   []string
	Env          []string
	WorkingDir   string
	User         string
	Volumes      []string
	ExposedPorts []string
	Labels       map[string]string
}

// HistoryEntry is one line of `docker history`.
type HistoryEntry struct {
	CreatedBy  string
	EmptyLayer bool
	Comment    string
}
