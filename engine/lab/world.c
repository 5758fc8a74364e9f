// Wiring the world while Go starts.
//
// Once the lab's PID 1 is forked (enter.c), vscript's parent process has
// nothing to do but wait, and the lab spends its first ten milliseconds or so
// starting the Go runtime. The parent uses that time, on the other core, to
// make the world: it moves itself into a new network namespace, makes the
// veth pair between the world and the lab host, and gives both ends their
// addresses, links and route — the first eight commands of worldCommands in
// world.go, in that order — and opens the sockets of the world's HTTP and DNS
// servers. It then hands the lab descriptors of the world's namespace and of
// those sockets over a socket pair; the lab receives them the first time
// something needs the world (Lab.Ready) and serves on them.
//
// The world's addresses are those of world.go. Requests are raw rtnetlink,
// one at a time, each acknowledged, as `ip` sends them.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "world.h"

#define WORLD_IP "198.51.100.1"
#define HOST_IP "198.51.100.2"
#define PLEN 24
#define LINK "eth0" // both ends: the lab host's uplink and the world's interface
#define LOOPBACK 1  // loopback is interface 1 in every network namespace
#define HTTP_PORT 80
#define DNS_PORT 53

// A request: a header, its fixed part, then attributes. Every request here
// is a few dozen bytes.
struct req {
	struct nlmsghdr h;
	char body[256];
};

static void *tail(struct nlmsghdr *h) { return (char *)h + NLMSG_ALIGN(h->nlmsg_len); }

static void raw(struct nlmsghdr *h, const void *data, size_t len) {
	memcpy(tail(h), data, len);
	h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + len;
}

static struct rtattr *attr(struct nlmsghdr *h, int type, const void *data, size_t len) {
	struct rtattr *a = tail(h);
	a->rta_type = type;
	a->rta_len = RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
	return a;
}

static struct rtattr *nest(struct nlmsghdr *h, int type) { return attr(h, type, NULL, 0); }

static void nest_end(struct nlmsghdr *h, struct rtattr *a) { a->rta_len = (char *)tail(h) - (char *)a; }

static void begin(struct req *r, int type, int flags, const void *fixed, size_t len) {
	memset(r, 0, sizeof *r);
	r->h.nlmsg_len = NLMSG_HDRLEN;
	r->h.nlmsg_type = type;
	r->h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	raw(&r->h, fixed, len);
}

// talk sends r on fd and returns the kernel's answer: 0 or an errno.
static int talk(int fd, struct req *r) {
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	ssize_t n;
	do
		n = sendto(fd, &r->h, r->h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno;
	char buf[4096] __attribute__((aligned(NLMSG_ALIGNTO)));
	for (;;) {
		n = recv(fd, buf, sizeof buf, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		for (struct nlmsghdr *m = (void *)buf; NLMSG_OK(m, n); m = NLMSG_NEXT(m, n))
			if (m->nlmsg_type == NLMSG_ERROR)
				return -((struct nlmsgerr *)NLMSG_DATA(m))->error;
	}
}

// ifindex asks fd's namespace for the index of LINK; 0 if it has none.
static int ifindex(int fd) {
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, LINK);
	return ioctl(fd, SIOCGIFINDEX, &ifr) < 0 ? 0 : ifr.ifr_ifindex;
}

// one_queue asks for a single queue each way. Left to itself the kernel
// allocates a queue per CPU and then cuts a veth down to one, and each cut
// waits for an RCU grace period: most of a veth's creation time.
static void one_queue(struct nlmsghdr *h) {
	uint32_t one = 1;
	attr(h, IFLA_NUM_TX_QUEUES, &one, sizeof one);
	attr(h, IFLA_NUM_RX_QUEUES, &one, sizeof one);
}

// veth makes LINK in fd's namespace with its peer, also LINK, in peer_ns.
static int veth(int fd, int peer_ns) {
	struct req r;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	begin(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
	attr(&r.h, IFLA_IFNAME, LINK, sizeof LINK);
	one_queue(&r.h);
	struct rtattr *info = nest(&r.h, IFLA_LINKINFO);
	attr(&r.h, IFLA_INFO_KIND, "veth", sizeof "veth");
	struct rtattr *data = nest(&r.h, IFLA_INFO_DATA);
	struct rtattr *peer = nest(&r.h, VETH_INFO_PEER);
	raw(&r.h, &ifi, sizeof ifi);
	attr(&r.h, IFLA_IFNAME, LINK, sizeof LINK);
	uint32_t ns = peer_ns;
	attr(&r.h, IFLA_NET_NS_FD, &ns, sizeof ns);
	one_queue(&r.h);
	nest_end(&r.h, peer);
	nest_end(&r.h, data);
	nest_end(&r.h, info);
	return talk(fd, &r);
}

static int addr_add(int fd, int index, const char *ip) {
	struct req r;
	struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = PLEN, .ifa_index = index};
	begin(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
	struct in_addr a, brd;
	inet_pton(AF_INET, ip, &a);
	brd.s_addr = a.s_addr | htonl((1u << (32 - PLEN)) - 1);
	attr(&r.h, IFA_LOCAL, &a, sizeof a);
	attr(&r.h, IFA_ADDRESS, &a, sizeof a);
	attr(&r.h, IFA_BROADCAST, &brd, sizeof brd);
	return talk(fd, &r);
}

static int link_up(int fd, int index) {
	struct req r;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
	begin(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi);
	return talk(fd, &r);
}

static int default_route(int fd, int index, const char *gw) {
	struct req r;
	struct rtmsg rt = {
	    .rtm_family = AF_INET,
	    .rtm_table = RT_TABLE_MAIN,
	    .rtm_protocol = RTPROT_BOOT,
	    .rtm_scope = RT_SCOPE_UNIVERSE,
	    .rtm_type = RTN_UNICAST,
	};
	begin(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof rt);
	struct in_addr a;
	inet_pton(AF_INET, gw, &a);
	uint32_t oif = index;
	attr(&r.h, RTA_GATEWAY, &a, sizeof a);
	attr(&r.h, RTA_OIF, &oif, sizeof oif);
	return talk(fd, &r);
}

static int route_socket(void) { return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE); }

// server opens a socket on port of every address of this namespace, as Go's
// net.Listen would: a TCP one listening, a UDP one bound.
static int server(int type, int port, int *fd) {
	*fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return errno;
	int one = 1;
	struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(port)};
	if ((type == SOCK_STREAM && setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) ||
	    bind(*fd, (struct sockaddr *)&any, sizeof any) < 0 ||
	    (type == SOCK_STREAM && listen(*fd, SOMAXCONN) < 0))
		return errno;
	return 0;
}

// wire does the steps; on failure it says which one and why. fds gets the
// world's namespace and its servers' sockets, in the order of world.h.
static struct vscript_world_result wire(int fds[WORLD_FDS]) {
	struct vscript_world_result res = {0};
	int lab = -1, lab_ns = -1, world = -1, host_if = 0, world_if = 0;
#define STEP(n, expr)                                                                              \
	do {                                                                                       \
		res.step = (n);                                                                    \
		if ((res.err = (expr)) != 0)                                                       \
			goto out;                                                                  \
	} while (0)
#define SYS(call) ((call) < 0 ? errno : 0)

	// A netlink socket keeps the namespace it was made in: this one, and
	// the descriptor of its namespace, stay the lab host's.
	STEP(0, SYS(lab = route_socket()));
	STEP(0, SYS(lab_ns = ioctl(lab, SIOCGSKNS)));
	STEP(0, SYS(unshare(CLONE_NEWNET))); // ip netns add world
	STEP(0, SYS(world = route_socket()));
	STEP(0, SYS(fds[WORLD_NS] = ioctl(world, SIOCGSKNS)));
	STEP(1, veth(world, lab_ns)); // ip link add eth0 type veth peer name eth0 netns world
	STEP(1, (host_if = ifindex(lab)) ? 0 : ENODEV);
	STEP(1, (world_if = ifindex(world)) ? 0 : ENODEV);
	STEP(2, addr_add(lab, host_if, HOST_IP));
	STEP(3, link_up(lab, host_if));
	STEP(4, addr_add(world, world_if, WORLD_IP));
	STEP(5, link_up(world, world_if));
	STEP(6, link_up(world, LOOPBACK));
	STEP(7, default_route(lab, host_if, WORLD_IP));
	STEP(8, server(SOCK_STREAM, HTTP_PORT, &fds[WORLD_HTTP]));
	STEP(9, server(SOCK_DGRAM, DNS_PORT, &fds[WORLD_DNS_UDP]));
	STEP(9, server(SOCK_STREAM, DNS_PORT, &fds[WORLD_DNS_TCP]));
out:
	if (lab >= 0)
		close(lab);
	if (lab_ns >= 0)
		close(lab_ns);
	if (world >= 0)
		close(world);
	return res;
#undef STEP
#undef SYS
}

// away_from moves this process off cpu, remembering in all where it may run.
static int away_from(int cpu, cpu_set_t *all) {
	if (sched_getaffinity(0, sizeof *all, all) < 0)
		return 0;
	cpu_set_t other = *all;
	CPU_CLR(cpu, &other);
	return CPU_COUNT(&other) > 0 && sched_setaffinity(0, sizeof other, &other) == 0;
}

void vscript_make_world(int sock) {
	// The kernel starts a forked child on its parent's CPU: left there, the
	// lab's Go start-up and this wiring would take turns on one CPU while
	// another idles. The lab says where it runs as it starts; the world is
	// wired on another CPU.
	int cpu;
	ssize_t n;
	do
		n = recv(sock, &cpu, sizeof cpu, 0);
	while (n < 0 && errno == EINTR);
	cpu_set_t all;
	int moved = n == sizeof cpu && away_from(cpu, &all);

	int fds[WORLD_FDS] = {-1, -1, -1, -1};
	struct vscript_world_result res = wire(fds);
	if (moved)
		sched_setaffinity(0, sizeof all, &all);
	struct iovec iov = {.iov_base = &res, .iov_len = sizeof res};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof fds)];
	} control = {0};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (res.err == 0) {
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof control.buf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof fds);
		memcpy(CMSG_DATA(c), fds, sizeof fds);
	}
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
	for (int i = 0; i < WORLD_FDS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	close(sock);
}
