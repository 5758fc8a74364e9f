// Package volume owns everything about volumes that needs no mount(2):
// parsing Docker's `-v` and `--volumes-from` specs, the managed volume store
// in the state directory, and copy-up, which seeds an empty volume with the
// image's content at the mount path.
//
// A managed volume is a directory in the state directory, as Docker's local
// driver keeps them:
//
//	ROOT/volumes/NAME/_data        the data, bind-mounted into containers
//	ROOT/volumes/NAME/volume.json  name, anonymous, creating lab, labels
//
// A volume appears whole or not at all: it is built under ROOT/tmp and
// renamed into place, and removal renames it out before deleting it. Create
// and Remove hold the store's lock, so concurrent labs sharing a state
// directory see each volume created once.
//
// What uses a volume is known only to the engine facade (containers live in
// labs, not in the store), so Remove and Prune take an InUse function from it
// and refuse volumes it reports in use. Mounting is the runtime's job.
package volume
