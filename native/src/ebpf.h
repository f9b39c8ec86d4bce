// eBPF without libbpf, shared by the addon's two programs: the AF_XDP steering program (xdp.cc)
// and the IP-in-IP decapsulation program for tc ingress (tc-decap.cc). The bpf(2) syscall, map
// creation, a small assembler for hand-written programs, and the program load that retries with
// the verifier's log for the error message.
//
// Like common.h, everything is inline in an anonymous namespace: each file gets its own copy.
#pragma once

#include "common.h"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

// Newer than the headers of Debian 12's linux-libc-dev (6.1); the kernel's numbers (uapi bpf.h).
constexpr uint32_t kBpfTcxIngress = 46;  // enum bpf_attach_type BPF_TCX_INGRESS (Linux 6.6)
constexpr int32_t kTcxNext = -1;         // enum tcx_action_base
constexpr int32_t kTcxPass = 0;
constexpr int32_t kTcxDrop = 2;

inline long Bpf(int cmd, bpf_attr* attr) { return syscall(__NR_bpf, cmd, attr, sizeof *attr); }

inline int MapCreate(Napi::Env env, bpf_map_type type, const char* name, uint32_t valueSize, uint32_t entries, uint32_t keySize = 4) {
  bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = type;
  a.key_size = keySize;
  a.value_size = valueSize;
  a.max_entries = entries;
  strncpy(a.map_name, name, sizeof a.map_name - 1);
  int fd = static_cast<int>(Bpf(BPF_MAP_CREATE, &a));
  if (fd < 0) ThrowSys(env, std::string("bpf(BPF_MAP_CREATE, ") + name + ", max_entries=" + std::to_string(entries) + ")", errno);
  return fd;
}

// A program under construction. Jumps to blocks not yet written are recorded and patched when the
// block's position is known: JPass/JRedirect with Link() (the XDP program's two exits), or any
// numbered label with JumpTo() and Bind().
struct Asm {
  std::vector<bpf_insn> code;
  std::vector<size_t> toPass;      // jumps to patch to the "return XDP_PASS" block
  std::vector<size_t> toRedirect;  // jumps to patch to the redirect block
  std::vector<std::pair<size_t, int>> toLabel;  // (jump, label)
  std::vector<long> labels;                     // label -> position, -1 while unbound

  void Emit(uint8_t op, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i;
    memset(&i, 0, sizeof i);
    i.code = op;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    code.push_back(i);
  }
  void Mov(uint8_t dst, uint8_t src) { Emit(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
  void MovK(uint8_t dst, int32_t k) { Emit(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, k); }
  void AddK(uint8_t dst, int32_t k) { Emit(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, k); }
  void AndK(uint8_t dst, int32_t k) { Emit(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, k); }
  void Ld(uint8_t size, uint8_t dst, uint8_t src, int16_t off) { Emit(BPF_LDX | size | BPF_MEM, dst, src, off, 0); }
  void St(uint8_t size, uint8_t dst, int16_t off, uint8_t src) { Emit(BPF_STX | size | BPF_MEM, dst, src, off, 0); }
  void LdImm64(uint8_t dst, uint64_t v) {
    Emit(BPF_LD | BPF_DW | BPF_IMM, dst, 0, 0, static_cast<int32_t>(v & 0xffffffffu));
    Emit(0, 0, 0, 0, static_cast<int32_t>(v >> 32));
  }
  void LdMapFd(uint8_t dst, int fd) {
    Emit(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd);
    Emit(0, 0, 0, 0, 0);
  }
  void Call(int32_t helper) { Emit(BPF_JMP | BPF_CALL, 0, 0, 0, helper); }
  // r0 = bpf_map_lookup_elem(map, &key) for a u32 key in register `key`, stored at fp + `at` first.
  void LookupU32(int map, uint8_t key, int16_t at) {
    St(BPF_W, 10, at, key);
    LdMapFd(1, map);
    Mov(2, 10);
    AddK(2, at);
    Call(BPF_FUNC_map_lookup_elem);
  }
  void Exit() { Emit(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }
  // Conditional jump to pass / redirect, patched by Link().
  void JPass(uint8_t op, uint8_t dst, uint8_t src, int32_t imm) {
    toPass.push_back(code.size());
    Emit(op, dst, src, 0, imm);
  }
  void JRedirect(uint8_t op, uint8_t dst, int32_t imm) {
    toRedirect.push_back(code.size());
    Emit(op, dst, 0, 0, imm);
  }
  void Link(size_t pass, size_t redirect) {
    for (size_t at : toPass) code[at].off = static_cast<int16_t>(pass - at - 1);
    for (size_t at : toRedirect) code[at].off = static_cast<int16_t>(redirect - at - 1);
  }
  // Numbered labels: NewLabel(), jumps with JumpTo() before or after Bind(label) says where it is.
  int NewLabel() {
    labels.push_back(-1);
    return static_cast<int>(labels.size() - 1);
  }
  void JumpTo(uint8_t op, uint8_t dst, uint8_t src, int32_t imm, int label) {
    // A label bound already (a jump back): its offset now; else patched by Bind().
    const long at = labels[label];
    if (at >= 0) {
      Emit(op, dst, src, static_cast<int16_t>(at - static_cast<long>(code.size()) - 1), imm);
      return;
    }
    toLabel.emplace_back(code.size(), label);
    Emit(op, dst, src, 0, imm);
  }
  void Bind(int label) {
    labels[label] = static_cast<long>(code.size());
    for (const auto& j : toLabel) {
      if (j.second == label) code[j.first].off = static_cast<int16_t>(labels[label] - static_cast<long>(j.first) - 1);
    }
  }
};

// BPF_PROG_LOAD; on failure again with the verifier's log, which goes into the error (the first
// attempt skips the cost of the log). `what` names the program in the error ("XDP", "tc decap").
inline int ProgLoad(Napi::Env env, bpf_prog_type type, uint32_t expectedAttach, const char* name, const std::vector<bpf_insn>& code, const char* what) {
  static const char kLicense[] = "Dual MIT/GPL";
  bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = type;
  a.expected_attach_type = expectedAttach;
  a.insn_cnt = static_cast<uint32_t>(code.size());
  a.insns = reinterpret_cast<uint64_t>(code.data());
  a.license = reinterpret_cast<uint64_t>(kLicense);
  strncpy(a.prog_name, name, sizeof a.prog_name - 1);
  int fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &a));
  if (fd >= 0) return fd;
  int err = errno;
  std::vector<char> log(1 << 16);
  a.log_level = 1;
  a.log_size = static_cast<uint32_t>(log.size());
  a.log_buf = reinterpret_cast<uint64_t>(log.data());
  fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &a));
  if (fd >= 0) return fd;  // passed on the second try: keep it
  err = errno;
  log.back() = 0;
  ThrowSys(env, std::string("bpf(BPF_PROG_LOAD, ") + what + ", " + std::to_string(code.size()) + " insns) verifier log:\n" + std::string(log.data()) + "\n", err);
}

}  // namespace
