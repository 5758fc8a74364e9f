// Package image owns images and their layers in the state directory: the
// OCI image layout of content/, the unpacked layers of layers/, safe layer
// unpacking and packing, docker-diff style changes, and the built-in busybox
// and httpd images.
//
// # On disk
//
//	ROOT/content/oci-layout               {"imageLayoutVersion":"1.0.0"}
//	ROOT/content/index.json               one entry per image name; untagged images have an
//	                                      entry without the org.opencontainers.image.ref.name annotation
//	ROOT/content/blobs/sha256/<hex>       manifests, configs and layer tars, by digest
//	ROOT/layers/<chain id hex>/           one committed layer, unpacked in overlay form
//	ROOT/layers/l/<16 hex>  -> ../<hex>   its short name, for mount options
//
// An image's id is its config digest; its layers are kept as given (a plain
// tar from CommitDir and the built-in images, gzip'd as imported), so
// content/ is a valid OCI layout that other tools can read. A layer is
// unpacked once, into the directory named by its chain ID (its diff ID
// chained onto those of the layers below it), and every image whose stack
// starts with the same layers shares it. Unpacked layers hold overlayfs's
// form of deletions: a whiteout `.wh.NAME` in the tar is a 0/0 character
// device NAME, and `.wh..wh..opq` is the trusted.overlay.opaque=y xattr on
// its directory.
//
// Nothing half-written is ever visible. Blobs and layers are built under
// ROOT/tmp and renamed into place; index.json is replaced by rename while
// holding the state directory's lock, and read without it. Two runs making
// the same thing at once both succeed: content is addressed by digest, and
// the second rename finds the first one's result.
//
// # The snapshot model
//
// Layers is a snapshotter in containerd's sense, adapted to layers that
// never change once committed. Commit unpacks a layer tar on top of a parent
// chain; Prepare makes an active snapshot (an upper and a work directory
// wherever the caller keeps container state, the lab's tmpfs for a
// container) and returns its overlay Mount; View returns a read-only Mount;
// Remove deletes a committed layer. Committing an active snapshot is packing
// its upper directory as a layer tar (Pack, Store.CommitDir) and committing
// that, which makes a new image: docker commit, and each RUN or COPY step of
// a build.
//
// A mount uses layers for as long as it lives, so the runtime Holds them (a
// shared flock on each layer directory) from before mounting until after
// unmounting. Removing an image deletes the blobs and layers no other image
// uses, except held ones, which Prune collects later.
//
// # Long layer chains
//
// The kernel takes at most a page of mount options, and lowerdir= with full
// paths of 64-hex-digit directories runs out after about fifty layers. So
// each layer also has a short name in ROOT/layers/l/, and Lowers returns the
// base directory and the short names relative to it. The process that
// mounts must chdir(base) before mount(2), as Docker's overlay2 driver does;
// then a lowerdir entry costs 17 bytes and about 200 layers fit.
//
// # Determinism
//
// The same content always gives the same ids: Pack writes entries in
// lexical order with numeric owners and second-precision mtimes and no
// atime or ctime, the config records no time but the history's (the Unix
// epoch when none is given), and the built-in images stamp every file with
// the epoch, so one busybox binary always yields one busybox image id.
package image
