// What the parent tells the lab about the world it wired (world.c).
#include <stdint.h>

struct vscript_world_result {
	int32_t step; // the index in worldCommands (world.go) of the step that failed
	int32_t err;  // its errno; 0 if the world is ready
};

// vscript_make_world wires the world and sends the result, with the world's
// network namespace when it succeeded, on sock; it closes sock.
void vscript_make_world(int sock);
