// Package store owns the state directory: the one place vscript keeps data
// between runs (images and their layers, named volumes, the build cache).
//
// Layout (docs/internals.md has the full story):
//
//	ROOT/lock        flock(2) taken while metadata is changed
//	ROOT/active      flock(2) held shared by every open store, for its whole life
//	ROOT/content/    OCI image layout: oci-layout, index.json, blobs/sha256/
//	ROOT/layers/     unpacked layers, one directory per committed snapshot
//	ROOT/volumes/    managed volumes: NAME/_data and NAME/volume.json
//	ROOT/cache/      build cache records
//	ROOT/tmp/        temporary names; renamed into place when complete
//
// Writers never leave a half-written file visible: they write under tmp/ (on
// the same filesystem) and rename. A crashed run leaves at most stray entries
// in tmp/, which Open clears when no other run has the store open.
package store
