#!/usr/bin/env python3
# A/B harness. usage: bench.py OUT.jsonl SECS REPS  (lab must be up: ./lab.sh up)
import json, os, subprocess, sys, time, signal
OUT, SECS, REPS = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
PLAN = sys.argv[4] if len(sys.argv) > 4 else "all"
HZ = os.sysconf('SC_CLK_TCK')
GMAC, SMAC = "02:00:00:00:00:02", "02:00:00:00:00:04"
def ns(n, cmd): return ["ip", "netns", "exec", n] + cmd
def sysf(n, dev, f): return int(subprocess.check_output(ns(n, ["cat", f"/sys/class/net/{dev}/statistics/{f}"])))
def stat():
    with open("/proc/stat") as f: v = [int(x) for x in f.readline().split()[1:]]
    return dict(zip("user nice system idle iowait irq softirq steal".split(), v[:8]))
def ksi():
    t = 0
    # the ksoftirqd threads (their pids differ from machine to machine)
    pids = [int(d) for d in os.listdir("/proc") if d.isdigit() and open(f"/proc/{d}/comm").read().startswith("ksoftirqd/")]
    for pid in pids:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        t += int(f[11]) + int(f[12])
    return t / HZ
def kv(line):
    return {k: (float(v) if v.replace('.', '', 1).isdigit() else v) for k, v in (t.split('=', 1) for t in line.split() if '=' in t)}
def run(backend, place, rate):
    gcpu, fcpu = ("0", "1") if place == "split" else ("0", "0")
    subprocess.check_call(ns("uvsx-dir", ["sysctl", "-qw", f"net.ipv4.ip_forward={1 if backend == 'kernel' else 0}"]))
    subprocess.call(ns("uvsx-dir", ["ip", "link", "set", "dev", "uvsx-d0", "xdp", "off"]), stderr=subprocess.DEVNULL)
    fwd = None; fout = []
    if backend.startswith("packet") or backend.startswith("xdp"):
        args = ["taskset", "-c", fcpu, "./fwd", "packet" if backend == "packet" else "xdp", "uvsx-d0", "uvsx-d1", SMAC, str(SECS + 4)]
        if backend.startswith("xdp"): args += [backend.split("-")[1], "auto"]
        fwd = subprocess.Popen(ns("uvsx-dir", args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        while True:
            line = fwd.stdout.readline(); fout.append(line.strip())
            if not line or line.startswith("ready"): break
        if not line.startswith("ready"):
            fwd.kill(); fwd.wait(5); return {"backend": backend, "error": fout}
    time.sleep(0.3)
    s0 = sysf("uvsx-sink", "uvsx-s0", "rx_packets"); gd0 = sysf("uvsx-gen", "uvsx-g0", "tx_dropped"); dd0 = sysf("uvsx-dir", "uvsx-d0", "rx_dropped")
    st0 = stat(); k0 = ksi(); t0 = time.time()
    maxc = int(rate * SECS) if rate else 100_000_000
    g = subprocess.run(ns("uvsx-gen", ["taskset", "-c", gcpu, "./gen", "uvsx-g0", GMAC, "10.211.1.2", "10.211.2.2", str(rate), str(SECS), str(maxc)]), capture_output=True, text=True, timeout=SECS + 10)
    time.sleep(0.1)
    st1 = stat(); k1 = ksi(); t1 = time.time()
    s1 = sysf("uvsx-sink", "uvsx-s0", "rx_packets"); gd1 = sysf("uvsx-gen", "uvsx-g0", "tx_dropped"); dd1 = sysf("uvsx-dir", "uvsx-d0", "rx_dropped")
    if fwd:
        fwd.send_signal(signal.SIGTERM)
        o, _ = fwd.communicate(timeout=10); fout += o.strip().splitlines()
    gs = kv(g.stdout.strip())
    d = {k: (st1[k] - st0[k]) / HZ for k in st0}
    busy = d["user"] + d["nice"] + d["system"] + d["irq"] + d["softirq"]
    fwdd = s1 - s0
    r = {"backend": backend, "place": place, "rate": rate, "sent": gs.get("sent"), "gen_pps": gs.get("pps"), "fwd": fwdd,
         "fwd_pps": fwdd / gs["elapsed"], "gen_utime": gs["utime"], "gen_stime": gs["stime"], "wall": t1 - t0,
         "busy_s": busy, "steal_s": d["steal"], "cpu": d, "ns_per_pkt": (busy - gs["utime"]) / fwdd * 1e9 if fwdd else None,
         "g0_tx_dropped": gd1 - gd0, "d0_rx_dropped": dd1 - dd0, "fwd_out": fout, "load": open("/proc/loadavg").read().strip()}
    for l in fout:
        if l.startswith("fwd "): f = kv(l); r["fwd_cpu_s"] = f["utime"] + f["stime"]; r["fwd_syscalls"] = f["syscalls"]
    own = gs["stime"] + r.get("fwd_cpu_s", 0) + (k1 - k0)
    r["ksoftirqd_s"] = k1 - k0; r["own_s"] = own; r["own_ns_per_pkt"] = own / fwdd * 1e9 if fwdd else None
    return r
BACK = ["packet", "xdp-drv", "xdp-skb", "kernel"]
steps = []
for rep in range(REPS):
    if PLAN in ("all", "unpaced"):
        for place in ("split", "same"):
            for b in (BACK if rep % 2 == 0 else BACK[::-1]): steps.append((b, place, 0))
    if PLAN in ("all", "paced"):
        for place in ("split", "same"):
            for b in (BACK + ["none"] if rep % 2 == 0 else (BACK + ["none"])[::-1]): steps.append((b, place, 200000))
with open(OUT, "a") as f:
    for b, p, rate in steps:
        r = run(b, p, rate); r["ts"] = time.strftime("%H:%M:%S")
        f.write(json.dumps(r) + "\n"); f.flush()
        print(r["ts"], b, r.get("error", ""), p, rate, "sent", r.get("sent"), "fwd", r.get("fwd"), "pps %.0f" % r.get("fwd_pps", 0), "ns/pkt", "%.0f" % (r.get("ns_per_pkt") or 0), "own", "%.0f" % (r.get("own_ns_per_pkt") or 0), "ksi", r.get("ksoftirqd_s"), "fwdcpu", r.get("fwd_cpu_s"), "steal", r.get("steal_s"), r.get("load"), flush=True)
