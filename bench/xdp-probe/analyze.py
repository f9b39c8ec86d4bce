#!/usr/bin/env python3
import json, sys, statistics as S
rows = [json.loads(l) for f in sys.argv[1:] for l in open(f)]
rows = [r for r in rows if "error" not in r]
def med(x): return S.median(x) if x else float('nan')
out = {}
for rate in (0, 200000):
    for place in ("split", "same"):
        print(f"\n== rate={'unpaced' if rate == 0 else rate} place={place}")
        print(f"{'backend':8} {'n':>2} {'gen_pps':>8} {'fwd_pps':>8} {'fwd/sent':>8} {'allcore_ns':>10} {'own_ns':>7} {'gen_sys_ns':>10} {'fwd_thr_ns':>10} {'fwd_u_ns':>8} {'pkts/syscall':>12}")
        for b in ("packet", "xdp-drv", "xdp-skb", "kernel", "none"):
            rs = [r for r in rows if r["backend"] == b and r["place"] == place and r["rate"] == rate]
            if not rs: continue
            def per(f, den="fwd"): return med([f(r) / r[den] * 1e9 for r in rs if r[den]])
            fu = []
            for r in rs:
                for l in r["fwd_out"]:
                    if l.startswith("fwd "):
                        d = dict(t.split("=") for t in l.split() if "=" in t); fu.append((float(d["utime"]), float(d["syscalls"]), r["fwd"]))
            print(f"{b:8} {len(rs):2} {med([r['gen_pps'] for r in rs]):8.0f} {med([r['fwd_pps'] for r in rs]):8.0f} {med([r['fwd']/r['sent'] for r in rs]):8.3f} "
                  f"{med([r['ns_per_pkt'] for r in rs if r['ns_per_pkt']]):10.0f} {med([r['own_ns_per_pkt'] for r in rs if r['own_ns_per_pkt']]):7.0f} "
                  f"{med([r['gen_stime']/r['sent']*1e9 for r in rs]):10.0f} {per(lambda r: r.get('fwd_cpu_s', 0)):10.0f} "
                  f"{med([u/f*1e9 for u,s,f in fu if f]):8.0f} {med([f/s for u,s,f in fu if s]):12.1f}")
            out[(rate, place, b)] = rs
loads = [r["load"].split()[0] for r in rows]
print("\nload1 range during runs:", min(loads), max(loads), " runs:", len(rows), rows[0]["ts"], "-", rows[-1]["ts"])
