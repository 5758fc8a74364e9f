// Package build owns Dockerfile builds, the engine side of image_build: the
// Dockerfile front end (parsing, ARG/ENV expansion, the config each step
// makes), the build context and its .dockerignore, copying sources into an
// image's root filesystem, the build cache, and the executor that runs the
// steps.
//
// It does not run containers or store images. Build works through the small
// Backend interface (look up an image, mount an image's root filesystem
// writable, run a process on a mount, commit a mount or a config as a new
// image), which the engine implements with engine/image and
// engine/runtime, and through a Cache and an unpacker for ADD'ed archives.
//
// # Flow
//
//	plan, err := build.Parse(dockerfile)     // syntax, instructions, flags: errors name the line
//	id, err := build.Build(ctx, plan, build.Options{ContextDir: dir, BuildArgs: args, Events: sink},
//		build.Deps{Backend: b, Cache: cache, Unpack: image.Unpack})
//
// Build follows Docker's legacy builder (the one whose history reads
// "/bin/sh -c #(nop) ..."): every step is committed as an image, config-only
// steps with an empty layer and filesystem steps (ADD, COPY, RUN, a WORKDIR
// that creates its directory) with exactly one layer. Each step's result is
// cached under a key of the parent image and the step's history line (see
// cache.go), so an unchanged Dockerfile and context rebuild to the same image
// id without running anything. docs/images.md lists what is supported and where
// vscript differs from Docker.
//
// # Files
//
//	plan.go     Parse, Plan, Stage, Step
//	state.go    ARG scope, expansion, and what each instruction does to the config
//	config.go   config helpers and Docker's defaults (PATH, /bin/sh -c)
//	context.go  Context (.dockerignore) and source resolution, also inside images
//	copy.go     CopyInto, chown resolution, archive detection for ADD
//	cache.go    cache keys, source hashes, StoreCache
//	build.go    the executor and its Backend interface
package build
