// What the parent tells the lab about the world it wired (world.c).
#include <stdint.h>

struct vscript_world_result {
	int32_t step; // the index in worldCommands (world.go) of the step that failed
	int32_t err;  // its errno; 0 if the world is ready
};

// The descriptors that come with a ready world, in this order (world.go).
enum { WORLD_NS, WORLD_HTTP, WORLD_DNS_UDP, WORLD_DNS_TCP, WORLD_FDS };

// vscript_make_world wires the world and sends the result on sock, with the
// descriptors when it succeeded; it closes sock.
void vscript_make_world(int sock);
