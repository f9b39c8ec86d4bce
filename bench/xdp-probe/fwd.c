// Forwarder with two backends, doing uvs-DR-like work: rewrite dst+src MAC, send out the other interface.
// usage: fwd packet IN OUT DSTMAC SECONDS
//        fwd xdp    IN OUT DSTMAC SECONDS [drv|skb|auto] [zc|copy|auto]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/if_xdp.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/xsk.h>

#define BATCH 64
#define NFRAMES 4096
#define FSIZE 2048

static volatile sig_atomic_t stop;
static void onsig(int s) { (void)s; stop = 1; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static unsigned char dmac[6], smac[6];
static long nrx, ntx, ndrop, nsyscalls, npolls;

static void getmac(const char *ifn, unsigned char *m)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifreq ifr = {0}; strncpy(ifr.ifr_name, ifn, IFNAMSIZ - 1);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr)) perror("SIOCGIFHWADDR");
	memcpy(m, ifr.ifr_hwaddr.sa_data, 6); close(fd);
}
static inline void rewrite(unsigned char *p) { memcpy(p, dmac, 6); memcpy(p + 6, smac, 6); }

static void report(const char *tag, double t0)
{
	struct rusage ru; getrusage(RUSAGE_SELF, &ru);
	printf("fwd %s rx=%ld tx=%ld drop=%ld syscalls=%ld polls=%ld elapsed=%.3f utime=%.4f stime=%.4f\n", tag, nrx, ntx, ndrop, nsyscalls, npolls, now() - t0,
	       ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6);
	fflush(stdout);
}

static int run_packet(const char *in, const char *out, double secs)
{
	int rx = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
	int v = TPACKET_V2;
	if (setsockopt(rx, SOL_PACKET, PACKET_VERSION, &v, sizeof v)) { perror("PACKET_VERSION"); return 1; }
	struct tpacket_req req = { .tp_block_size = 1 << 22, .tp_block_nr = NFRAMES * FSIZE / (1 << 22), .tp_frame_size = FSIZE, .tp_frame_nr = NFRAMES };
	if (setsockopt(rx, SOL_PACKET, PACKET_RX_RING, &req, sizeof req)) { perror("PACKET_RX_RING"); return 1; }
	unsigned char *ring = mmap(NULL, (size_t)NFRAMES * FSIZE, PROT_READ | PROT_WRITE, MAP_SHARED, rx, 0);
	if (ring == MAP_FAILED) { perror("mmap"); return 1; }
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_ifindex = if_nametoindex(in) };
	if (bind(rx, (void *)&sll, sizeof sll)) { perror("bind rx"); return 1; }
	int tx = socket(AF_PACKET, SOCK_RAW, 0);
	int one = 1;
	if (setsockopt(tx, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one)) perror("QDISC_BYPASS");
	struct sockaddr_ll tl = { .sll_family = AF_PACKET, .sll_protocol = 0, .sll_ifindex = if_nametoindex(out) };
	if (bind(tx, (void *)&tl, sizeof tl)) { perror("bind tx"); return 1; }
	struct mmsghdr mm[BATCH]; struct iovec iov[BATCH]; unsigned idx[BATCH];
	memset(mm, 0, sizeof mm);
	unsigned cur = 0;
	printf("ready packet\n"); fflush(stdout);
	double t0 = now(), tend = t0 + secs;
	while (!stop) {
		int n = 0;
		while (n < BATCH) {
			struct tpacket2_hdr *h = (void *)(ring + (size_t)cur * FSIZE);
			if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) break;
			unsigned char *p = (unsigned char *)h + h->tp_mac;
			rewrite(p);
			iov[n].iov_base = p; iov[n].iov_len = h->tp_snaplen;
			mm[n].msg_hdr.msg_iov = &iov[n]; mm[n].msg_hdr.msg_iovlen = 1;
			idx[n] = cur; n++;
			cur = (cur + 1) % NFRAMES;
		}
		if (n == 0) {
			if (now() >= tend) break;
			struct pollfd pf = { .fd = rx, .events = POLLIN };
			poll(&pf, 1, 100); npolls++;
			continue;
		}
		nrx += n;
		int done = 0;
		while (done < n) {
			int r = sendmmsg(tx, mm + done, n - done, MSG_DONTWAIT); nsyscalls++;
			if (r < 0) { if (errno == EAGAIN || errno == ENOBUFS) continue; ndrop += n - done; break; }
			done += r;
		}
		ntx += done;
		for (int i = 0; i < n; i++) { struct tpacket2_hdr *h = (void *)(ring + (size_t)idx[i] * FSIZE); __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE); }
	}
	struct tpacket_stats st; socklen_t sl = sizeof st;
	getsockopt(rx, SOL_PACKET, PACKET_STATISTICS, &st, &sl);
	printf("ring_stats packets=%u drops=%u\n", st.tp_packets, st.tp_drops);
	report("packet", t0);
	return 0;
}

static int run_xdp(const char *in, const char *out, double secs, const char *amode, const char *bmode)
{
	int ifin = if_nametoindex(in);
	struct bpf_object *obj = bpf_object__open_file("xdp_kern.o", NULL);
	if (!obj || bpf_object__load(obj)) { fprintf(stderr, "bpf load failed\n"); return 1; }
	int prog = bpf_program__fd(bpf_object__find_program_by_name(obj, "xdp_uvs"));
	int map = bpf_map__fd(bpf_object__find_map_by_name(obj, "xsks"));
	__u32 xflags = 0; const char *attached = NULL;
	if (strcmp(amode, "skb") != 0) {
		int e = bpf_xdp_attach(ifin, prog, XDP_FLAGS_DRV_MODE, NULL);
		if (!e) { xflags = XDP_FLAGS_DRV_MODE; attached = "native(drv)"; }
		else fprintf(stderr, "native attach failed: %s\n", strerror(-e));
	}
	if (!attached && strcmp(amode, "drv") != 0) {
		int e = bpf_xdp_attach(ifin, prog, XDP_FLAGS_SKB_MODE, NULL);
		if (!e) { xflags = XDP_FLAGS_SKB_MODE; attached = "generic(skb)"; }
		else fprintf(stderr, "skb attach failed: %s\n", strerror(-e));
	}
	if (!attached) return 1;
	int rc = 1;
	struct xsk_socket *rxs = NULL, *txs = NULL;
	void *buf = mmap(NULL, (size_t)NFRAMES * FSIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct xsk_ring_prod fq = {0}, fq2 = {0}, txr = {0}; struct xsk_ring_cons cq = {0}, cq2 = {0}, rxr = {0};
	struct xsk_umem *umem;
	struct xsk_umem_config ucfg = { .fill_size = NFRAMES, .comp_size = NFRAMES, .frame_size = FSIZE, .frame_headroom = 0 };
	int e = xsk_umem__create(&umem, buf, (size_t)NFRAMES * FSIZE, &fq, &cq, &ucfg);
	if (e) { fprintf(stderr, "umem create: %s\n", strerror(-e)); goto out; }
	struct xsk_socket_config scfg = { .rx_size = 2048, .tx_size = 2048, .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD, .xdp_flags = xflags };
	const char *bound = NULL;
	if (strcmp(bmode, "copy") != 0) {
		scfg.bind_flags = XDP_ZEROCOPY | XDP_USE_NEED_WAKEUP;
		e = xsk_socket__create(&rxs, in, 0, umem, &rxr, NULL, &scfg);
		if (!e) bound = "zerocopy"; else fprintf(stderr, "rx XDP_ZEROCOPY bind failed: %s\n", strerror(-e));
	}
	if (!bound) {
		scfg.bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP;
		// a just-closed XSK on this queue is torn down asynchronously: retry EBUSY for up to 3 s
		for (int tries = 0; tries < 30; tries++) {
			e = xsk_socket__create(&rxs, in, 0, umem, &rxr, NULL, &scfg);
			if (e != -EBUSY) break;
			usleep(100000);
		}
		if (!e) bound = "copy"; else { fprintf(stderr, "rx XDP_COPY bind failed: %s\n", strerror(-e)); goto out; }
	}
	const char *tbound = NULL;
	if (strcmp(bmode, "copy") != 0) {
		scfg.bind_flags = XDP_ZEROCOPY | XDP_USE_NEED_WAKEUP;
		e = xsk_socket__create_shared(&txs, out, 0, umem, NULL, &txr, &fq2, &cq2, &scfg);
		if (!e) tbound = "zerocopy"; else fprintf(stderr, "tx XDP_ZEROCOPY bind failed: %s\n", strerror(-e));
	}
	if (!tbound) {
		scfg.bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP;
		for (int tries = 0; tries < 30; tries++) {
			e = xsk_socket__create_shared(&txs, out, 0, umem, NULL, &txr, &fq2, &cq2, &scfg);
			if (e != -EBUSY) break;
			usleep(100000);
		}
		if (!e) tbound = "copy"; else { fprintf(stderr, "tx XDP_COPY shared-umem bind failed: %s\n", strerror(-e)); goto out; }
	}
	if (getenv("FWD_DEBUG")) fprintf(stderr, "cq: cp=%u cc=%u mask=%u size=%u prod=%p ring=%p | cq2: cp=%u cc=%u mask=%u size=%u prod=%p ring=%p\n", cq.cached_prod, cq.cached_cons, cq.mask, cq.size, (void*)cq.producer, cq.ring, cq2.cached_prod, cq2.cached_cons, cq2.mask, cq2.size, (void*)cq2.producer, cq2.ring);
	e = xsk_socket__update_xskmap(rxs, map);
	if (e) { fprintf(stderr, "update xskmap: %s\n", strerror(-e)); goto out; }
	// all frames into the RX fill ring; TX completions (cq2) go back to it
	__u32 i0;
	if (xsk_ring_prod__reserve(&fq, NFRAMES, &i0) != NFRAMES) { fprintf(stderr, "fq reserve\n"); goto out; }
	for (int i = 0; i < NFRAMES; i++) *xsk_ring_prod__fill_addr(&fq, i0 + i) = (__u64)i * FSIZE;
	xsk_ring_prod__submit(&fq, NFRAMES);
	int rfd = xsk_socket__fd(rxs), tfd = xsk_socket__fd(txs);
	struct xdp_options o1 = {0}, o2 = {0}; socklen_t ol = sizeof o1;
	getsockopt(rfd, SOL_XDP, XDP_OPTIONS, &o1, &ol); ol = sizeof o2; getsockopt(tfd, SOL_XDP, XDP_OPTIONS, &o2, &ol);
	bound = (o1.flags & XDP_OPTIONS_ZEROCOPY) ? "zerocopy" : "copy";
	tbound = (o2.flags & XDP_OPTIONS_ZEROCOPY) ? "zerocopy(shared-umem)" : "copy(shared-umem)";
	printf("ready xdp attach=%s rxbind=%s txbind=%s need_wakeup(fq)=%d\n", attached, bound, tbound, xsk_ring_prod__needs_wakeup(&fq)); fflush(stdout);
	double t0 = now(), tend = t0 + secs;
	long outstanding = 0;
	while (!stop) {
		__u32 ic, ir, it, ifl;
		unsigned c = xsk_ring_cons__peek(&cq2, NFRAMES, &ic);
		if (c) {
			if (getenv("FWD_DEBUG")) fprintf(stderr, "cq2 c=%u ic=%u addr0=%llu\n", c, ic, (unsigned long long)*xsk_ring_cons__comp_addr(&cq2, ic));
			while (xsk_ring_prod__reserve(&fq, c, &ifl) != c) if (stop || now() >= tend) goto done;
			for (unsigned i = 0; i < c; i++) *xsk_ring_prod__fill_addr(&fq, ifl + i) = *xsk_ring_cons__comp_addr(&cq2, ic + i);
			xsk_ring_prod__submit(&fq, c);
			xsk_ring_cons__release(&cq2, c);
			outstanding -= c;
		}
		unsigned n = xsk_ring_cons__peek(&rxr, BATCH, &ir);
		if (!n) {
			if (outstanding && now() < tend) { sendto(tfd, NULL, 0, MSG_DONTWAIT, NULL, 0); nsyscalls++; continue; }
			if (now() >= tend) break;
			if (xsk_ring_prod__needs_wakeup(&fq)) { recvfrom(rfd, NULL, 0, MSG_DONTWAIT, NULL, NULL); nsyscalls++; }
			struct pollfd pf = { .fd = rfd, .events = POLLIN };
			poll(&pf, 1, 100); npolls++;
			continue;
		}
		while (xsk_ring_prod__reserve(&txr, n, &it) != n) { sendto(tfd, NULL, 0, MSG_DONTWAIT, NULL, 0); nsyscalls++; if (stop || now() >= tend) goto done; }
		for (unsigned i = 0; i < n; i++) {
			const struct xdp_desc *d = xsk_ring_cons__rx_desc(&rxr, ir + i);
			rewrite(xsk_umem__get_data(buf, d->addr));
			struct xdp_desc *t = xsk_ring_prod__tx_desc(&txr, it + i);
			t->addr = d->addr; t->len = d->len; t->options = 0;
		}
		xsk_ring_prod__submit(&txr, n);
		xsk_ring_cons__release(&rxr, n);
		nrx += n; ntx += n; outstanding += n;
		if (xsk_ring_prod__needs_wakeup(&txr)) { sendto(tfd, NULL, 0, MSG_DONTWAIT, NULL, 0); nsyscalls++; }
	}
done:;
	struct xdp_statistics xs; socklen_t sl = sizeof xs;
	if (!getsockopt(rfd, SOL_XDP, XDP_STATISTICS, &xs, &sl))
		printf("xsk_rx_stats rx_dropped=%llu rx_invalid=%llu rx_ring_full=%llu fill_empty=%llu\n", xs.rx_dropped, xs.rx_invalid_descs, (unsigned long long)xs.rx_ring_full, (unsigned long long)xs.rx_fill_ring_empty_descs);
	sl = sizeof xs;
	if (!getsockopt(tfd, SOL_XDP, XDP_STATISTICS, &xs, &sl))
		printf("xsk_tx_stats tx_invalid=%llu tx_ring_empty=%llu\n", xs.tx_invalid_descs, (unsigned long long)xs.tx_ring_empty_descs);
	report("xdp", t0);
	rc = 0;
out:
	if (txs) xsk_socket__delete(txs);
	if (rxs) xsk_socket__delete(rxs);
	bpf_xdp_detach(ifin, xflags, NULL);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 6) { fprintf(stderr, "usage: fwd packet|xdp IN OUT DSTMAC SECONDS [drv|skb|auto] [zc|copy|auto]\n"); return 2; }
	signal(SIGTERM, onsig); signal(SIGINT, onsig); signal(SIGPIPE, SIG_IGN);
	sscanf(argv[4], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &dmac[0], &dmac[1], &dmac[2], &dmac[3], &dmac[4], &dmac[5]);
	getmac(argv[3], smac);
	double secs = atof(argv[5]);
	if (!strcmp(argv[1], "packet")) return run_packet(argv[2], argv[3], secs);
	if (!strcmp(argv[1], "xdp")) return run_xdp(argv[2], argv[3], secs, argc > 6 ? argv[6] : "auto", argc > 7 ? argv[7] : "auto");
	return 2;
}
