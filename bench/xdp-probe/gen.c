// Generator: 60-byte (64 on wire) IPv4/UDP frames, 1024 flows (src port varies),
// AF_PACKET + PACKET_QDISC_BYPASS + sendmmsg batches of 64. Bounded by time and count.
// usage: gen IFNAME DSTMAC SRCIP DSTIP RATE_PPS(0=unpaced) SECONDS MAXCOUNT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>

#define NFLOWS 1024
#define FLEN 60
#define BATCH 64

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static uint16_t csum(const void *p, int n) { const uint16_t *w = p; uint32_t s = 0; while (n > 1) { s += *w++; n -= 2; } while (s >> 16) s = (s & 0xffff) + (s >> 16); return ~s; }

int main(int argc, char **argv)
{
	if (argc < 8) { fprintf(stderr, "usage\n"); return 2; }
	const char *ifn = argv[1];
	unsigned char dmac[6];
	sscanf(argv[2], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &dmac[0], &dmac[1], &dmac[2], &dmac[3], &dmac[4], &dmac[5]);
	in_addr_t sip = inet_addr(argv[3]), dip = inet_addr(argv[4]);
	double rate = atof(argv[5]), secs = atof(argv[6]);
	long maxc = atol(argv[7]);
	int fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0) { perror("socket"); return 1; }
	int one = 1;
	if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one)) perror("qdisc_bypass");
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_ifindex = if_nametoindex(ifn), .sll_protocol = 0 };
	if (bind(fd, (void *)&sll, sizeof sll)) { perror("bind"); return 1; }
	struct ifreq ifr = {0}; strncpy(ifr.ifr_name, ifn, IFNAMSIZ - 1);
	ioctl(fd, SIOCGIFHWADDR, &ifr);
	static unsigned char fr[NFLOWS][64];
	for (int i = 0; i < NFLOWS; i++) {
		unsigned char *p = fr[i]; memset(p, 0, 64);
		struct ether_header *e = (void *)p; memcpy(e->ether_dhost, dmac, 6); memcpy(e->ether_shost, ifr.ifr_hwaddr.sa_data, 6); e->ether_type = htons(ETHERTYPE_IP);
		struct iphdr *ip = (void *)(p + 14); ip->version = 4; ip->ihl = 5; ip->ttl = 64; ip->protocol = 17; ip->tot_len = htons(FLEN - 14); ip->saddr = sip; ip->daddr = dip; ip->id = htons(i); ip->check = csum(ip, 20);
		struct udphdr *u = (void *)(p + 34); u->source = htons(10000 + i); u->dest = htons(80); u->len = htons(FLEN - 34); u->check = 0;
	}
	struct mmsghdr mm[BATCH]; struct iovec iov[BATCH];
	memset(mm, 0, sizeof mm);
	long sent = 0, errs = 0; unsigned fi = 0;
	double t0 = now(), tend = t0 + secs;
	int b = 0;
	for (;;) {
		double t = now();
		if (t >= tend || sent >= maxc) break;
		if (rate > 0) {
			double due = t0 + sent / rate;
			if (due > t) { double d = due - t; struct timespec ts = { (time_t)d, (long)((d - (time_t)d) * 1e9) }; nanosleep(&ts, NULL); }
		}
		int n = BATCH; if (maxc - sent < n) n = maxc - sent;
		for (int i = 0; i < n; i++) { iov[i].iov_base = fr[fi]; iov[i].iov_len = FLEN; fi = (fi + 1) & (NFLOWS - 1); mm[i].msg_hdr.msg_iov = &iov[i]; mm[i].msg_hdr.msg_iovlen = 1; }
		int r = sendmmsg(fd, mm, n, MSG_DONTWAIT);
		if (r < 0) { errs++; if (errno != EAGAIN && errno != ENOBUFS) { perror("sendmmsg"); break; } continue; }
		sent += r; b++;
	}
	double el = now() - t0;
	struct rusage ru; getrusage(RUSAGE_SELF, &ru);
	printf("gen sent=%ld elapsed=%.4f pps=%.0f utime=%.4f stime=%.4f errs=%ld\n", sent, el, sent / el,
	       ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6, errs);
	return 0;
}
