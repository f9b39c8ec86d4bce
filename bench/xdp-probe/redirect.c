// redirect: the packet-rate bench's reference for an in-kernel fast path (bench/e2e/pps.ts, case
// "XDP redirect in the kernel (reference)"). A generic-mode XDP program on IFIN sends IPv4 UDP
// frames to DPORT out of IFOUT with both MACs rewritten (bpf_redirect), which is all that uvs DR
// does to a frame of an established flow; every other frame passes to the kernel. It answers how
// fast and how cheaply uvs could forward on this machine if established flows were offloaded to
// XDP instead of crossing to user space (native/README.md, "An in-kernel fast path, measured").
// Not part of uvs. No libbpf: the program is assembled here and attached through a BPF link, so it
// leaves the device when this process ends. Bounded by SECONDS.
//
//   gcc -O2 -o redirect redirect.c
//   ip netns exec NS ./redirect IFIN IFOUT DST_MAC SRC_MAC DPORT SECONDS
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long bpf(int cmd, union bpf_attr *a) { return syscall(__NR_bpf, cmd, a, sizeof *a); }

static struct bpf_insn prog[64];
static int n;

static void emit(unsigned char code, int dst, int src, short off, int imm) {
  struct bpf_insn i;
  memset(&i, 0, sizeof i);
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  prog[n++] = i;
}

static int parse_mac(const char *s, unsigned m[6]) {
  char extra;
  return sscanf(s, "%x:%x:%x:%x:%x:%x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &extra) == 6;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: redirect IFIN IFOUT DST_MAC SRC_MAC DPORT SECONDS\n");
    return 2;
  }
  unsigned in = if_nametoindex(argv[1]), out = if_nametoindex(argv[2]);
  unsigned dmac[6], smac[6];
  int port = atoi(argv[5]), secs = atoi(argv[6]);
  if (!in || !out) { fprintf(stderr, "redirect: no such device: %s\n", !in ? argv[1] : argv[2]); return 2; }
  if (!parse_mac(argv[3], dmac) || !parse_mac(argv[4], smac)) { fprintf(stderr, "redirect: a MAC is aa:bb:cc:dd:ee:ff\n"); return 2; }
  if (port < 1 || port > 65535 || secs < 1 || secs > 3600) { fprintf(stderr, "redirect: DPORT 1-65535, SECONDS 1-3600\n"); return 2; }

  // r6 = ctx, r7 = data, r8 = data_end; Ethernet + IPv4 (no options) + UDP ports in the frame.
  emit(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0);
  emit(BPF_LDX | BPF_W | BPF_MEM, 7, 6, offsetof(struct xdp_md, data), 0);
  emit(BPF_LDX | BPF_W | BPF_MEM, 8, 6, offsetof(struct xdp_md, data_end), 0);
  emit(BPF_ALU64 | BPF_MOV | BPF_X, 4, 7, 0, 0);
  emit(BPF_ALU64 | BPF_ADD | BPF_K, 4, 0, 0, 14 + 20 + 4);
  int to_pass[4], k = 0;
  to_pass[k++] = n;
  emit(BPF_JMP | BPF_JGT | BPF_X, 4, 8, 0, 0);
  emit(BPF_LDX | BPF_H | BPF_MEM, 4, 7, 12, 0);
  to_pass[k++] = n;
  emit(BPF_JMP32 | BPF_JNE | BPF_K, 4, 0, 0, htons(0x0800));
  emit(BPF_LDX | BPF_H | BPF_MEM, 4, 7, 14, 0);  // version/IHL and TOS: 0x45 then anything
  emit(BPF_ALU64 | BPF_AND | BPF_K, 4, 0, 0, 0xff);
  emit(BPF_LDX | BPF_B | BPF_MEM, 5, 7, 23, 0);
  emit(BPF_ALU64 | BPF_LSH | BPF_K, 5, 0, 0, 8);
  emit(BPF_ALU64 | BPF_OR | BPF_X, 4, 5, 0, 0);  // r4 = protocol << 8 | (version/IHL)
  to_pass[k++] = n;
  emit(BPF_JMP | BPF_JNE | BPF_K, 4, 0, 0, (17 << 8) | 0x45);
  emit(BPF_LDX | BPF_H | BPF_MEM, 4, 7, 14 + 20 + 2, 0);
  to_pass[k++] = n;
  emit(BPF_JMP32 | BPF_JNE | BPF_K, 4, 0, 0, htons(port));
  for (int i = 0; i < 6; i++) {
    emit(BPF_ST | BPF_B | BPF_MEM, 7, 0, i, dmac[i]);
    emit(BPF_ST | BPF_B | BPF_MEM, 7, 0, 6 + i, smac[i]);
  }
  emit(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, out);
  emit(BPF_ALU64 | BPF_MOV | BPF_K, 2, 0, 0, 0);
  emit(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_redirect);
  emit(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  int pass = n;
  emit(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, XDP_PASS);
  emit(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  for (int i = 0; i < k; i++) prog[to_pass[i]].off = pass - to_pass[i] - 1;

  static char log[65536];
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_XDP;
  a.expected_attach_type = BPF_XDP;
  a.insn_cnt = n;
  a.insns = (unsigned long)prog;
  a.license = (unsigned long)"GPL";
  a.log_buf = (unsigned long)log;
  a.log_size = sizeof log;
  a.log_level = 1;
  int pf = bpf(BPF_PROG_LOAD, &a);
  if (pf < 0) { perror("redirect: BPF_PROG_LOAD"); fprintf(stderr, "%s\n", log); return 1; }
  memset(&a, 0, sizeof a);
  a.link_create.prog_fd = pf;
  a.link_create.target_ifindex = in;
  a.link_create.attach_type = BPF_XDP;
  a.link_create.flags = XDP_FLAGS_SKB_MODE;
  if (bpf(BPF_LINK_CREATE, &a) < 0) { perror("redirect: BPF_LINK_CREATE"); return 1; }
  printf("attached\n");
  fflush(stdout);
  sleep(secs);
  return 0;
}
