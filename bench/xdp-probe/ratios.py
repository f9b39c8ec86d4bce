#!/usr/bin/env python3
# per-session medians and ratios vs packet backend
import json, sys, statistics as S
for fn in sys.argv[1:]:
    rows = [json.loads(l) for l in open(fn)]; rows = [r for r in rows if "error" not in r]
    loads = [float(r["load"].split()[0]) for r in rows]
    print(f"\n### {fn}: {len(rows)} runs {rows[0]['ts']}-{rows[-1]['ts']} UTC, load1 {min(loads):.2f}-{max(loads):.2f}")
    print("| rate | placement | backend | runs | fwd kpps | x packet | all-core ns/pkt | x packet | fwd-thread ns/pkt | gen-side sys ns/pkt |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for rate in (0, 200000):
        for place in ("split", "same"):
            med = {}
            for b in ("packet", "xdp-drv", "xdp-skb", "kernel"):
                rs = [r for r in rows if r["backend"] == b and r["place"] == place and r["rate"] == rate]
                if not rs: continue
                med[b] = (S.median(r["fwd_pps"] for r in rs), S.median(r["ns_per_pkt"] for r in rs), len(rs),
                          S.median(r.get("fwd_cpu_s", 0) / r["fwd"] * 1e9 for r in rs), S.median(r["gen_stime"] / r["sent"] * 1e9 for r in rs))
            for b, (p, n, k, ft, gs) in med.items():
                print(f"| {'unpaced' if rate == 0 else '200k'} | {place} | {b} | {k} | {p/1e3:.0f} | {p/med['packet'][0]:.2f} | {n:.0f} | {n/med['packet'][1]:.2f} | {ft:.0f} | {gs:.0f} |")
