// Where data-plane workers run (native/README.md "Placement"). With PACKET_FANOUT_CPU a frame goes
// to the fanout member at index (receiving CPU mod members) — af_packet.c fanout_demux_cpu — and
// members are indexed in the order they joined (__fanout_link). Workers that join in id order are
// therefore member i = worker i, and worker i takes the frames received on CPUs c with
// c mod N = i (and keep that order: a worker that dies is restarted with those after it, in id
// order, dataplane.ts recycleInOrder). Pinning worker i to those CPUs makes the kernel wake it where its frame arrived, on
// a CPU that is awake already (running the softirq that queued the frame), as the kernel's own
// forwarding runs there. A wake-up on another, idle CPU costs an IPI and the vCPU's way out of
// halt: about 50 µs on this project's VM, against about 7 µs on the same CPU (issue 12).

/**
 * The CPUs worker `id` of `workers` pins itself to: those of `allowed` (uvsd's own affinity) whose
 * frames it takes under fanout 'cpu'. Empty when none of them is allowed (the worker floats over
 * uvsd's CPUs) or when one worker takes every CPU's frames anyway.
 */
export function workerCpus(id: number, workers: number, allowed: readonly number[]): number[] {
  if (workers <= 1) return [];
  return allowed.filter((c) => c % workers === id);
}

