#!/usr/bin/env python3
"""emu vs QEMU whole-system benchmark (driven by benches/compare.sh; see docs/benchmarks.md).

Runs every workload on QEMU and emu alternately, RUNS times each, takes the host wall time of
each run (or of the interval between two marker lines on the guest console), and prints the
medians and the emu/QEMU ratios (below 1.0: emu is faster).

Usage: compare.py --emu EMU --qemu QEMU --guest DIR --roms DIR [--runs N] [--only NAMES]
                  [--bios fw|default] [--emu-args ARGS] [--stats]
"""

import argparse
import os
import platform
import select
import shlex
import statistics
import subprocess
import sys
import time


# The kernel's early console (Linux `earlycon`) on the virt board's 16550 at 0x10000000, as
# both emulators place it.
EARLYCON = "earlycon=uart8250,mmio,0x10000000"

# boot-phases: (phase, the console line that ends it). A phase starts where the previous
# one ended (the first at process start); the last, user space, ends at EMU-INIT-READY.
# The first two need OpenSBI's banner (`BIOS=fw`, the default); `phases_for` merges them
# for emu's built-in SBI, which prints none.
PHASES = [
    ("emulator start and firmware to its banner", "OpenSBI v"),
    ("firmware to the kernel's first line", "Linux version"),
    ("kernel memory setup (to ftrace's line)", "ftrace: allocating"),
    ("core kernel init (to the timer clocksource)", "clocksource: Switched to clocksource"),
    ("initcalls: drivers, crypto self-tests, initramfs (to Run /init)", "Run /init as init process"),
]
PHASED = {"boot-phases"}


def phases_for(bios):
    """The phases whose end lines every firmware of this run prints."""
    if bios == "fw":
        return PHASES
    return [("emulator start, firmware and kernel entry (to its first line)", "Linux version")] + PHASES[2:]


def run_timed(cmd, markers, timeout, log_path):
    """Run cmd with stdin from /dev/null; return (host seconds from start to each marker's first
    appearance, seconds to exit, exit status). The console output goes to log_path."""
    found = {}
    start = time.monotonic()
    with open(log_path, "wb", buffering=0) as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        buf = b""
        fd = proc.stdout.fileno()
        os.set_blocking(fd, True)
        deadline = start + timeout
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"timeout after {timeout} s: {shlex.join(cmd)} (log: {log_path})")
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            now = time.monotonic() - start
            if not chunk:
                break
            log.write(chunk)
            buf += chunk
            for m in markers:
                if m not in found and m.encode() in buf:
                    found[m] = now
            # Keep only a tail long enough to hold a marker split across reads.
            if len(buf) > 4096:
                buf = buf[-256:]
        status = proc.wait()
    total = time.monotonic() - start
    missing = [m for m in markers if m not in found]
    if missing:
        raise RuntimeError(
            f"marker(s) {missing} never appeared (exit status {status}): {shlex.join(cmd)} (log: {log_path})"
        )
    return found, total, status


def machine_description():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} CPUs (nproc), {model}, {platform.system()} {platform.release()}, load {load:.2f} at start"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emu", required=True)
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--qemu-spike", required=True)
    ap.add_argument("--guest", required=True)
    ap.add_argument("--roms", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--bios", default="fw", choices=["fw", "default"])
    ap.add_argument("--emu-args", default="")
    ap.add_argument("--mem", default="512M")
    ap.add_argument("--log-dir", default="/tmp/emu-bench")
    ap.add_argument("--procs", type=int, default=200)
    ap.add_argument("--sevenzip", default="")
    args = ap.parse_args()

    os.makedirs(args.log_dir, exist_ok=True)
    g = args.guest
    common = ["-m", args.mem, "-smp", "1", "-nographic", "-kernel", f"{g}/Image", "-initrd", f"{g}/initrd.gz"]
    if args.bios == "fw":
        common += ["-bios", f"{g}/fw_dynamic.bin"]
    emu_extra = shlex.split(args.emu_args)

    def virt(which, append):
        full = common + ["-append", "console=ttyS0 " + append]
        if which == "qemu":
            return [args.qemu, "-M", "virt"] + full
        return [args.emu, "--arch", "riscv64", "-M", "virt"] + full + emu_extra

    def bare(which, elf):
        if which == "qemu":
            return [args.qemu_spike, "-M", "spike", "-bios", "none", "-kernel", elf, "-nographic"]
        return [args.emu, "--arch", "riscv64", "-bios", "none", "-kernel", elf] + emu_extra

    sevenzip = "7zip" + (":" + args.sevenzip if args.sevenzip else "")
    # name -> (command builder, begin marker or None for process start, end marker or None for
    # process exit, timeout seconds)
    workloads = {
        "boot": (lambda w: virt(w, "emu.test=poweroff"), None, "EMU-INIT-READY", 300),
        # The same boot with the kernel's early console on the 16550 (both boards have it at
        # 0x10000000), so that every phase's first line leaves at once: per-phase times.
        "boot-phases": (lambda w: virt(w, f"emu.test=poweroff {EARLYCON}"), None, "EMU-INIT-READY", 300),
        "7zip": (lambda w: virt(w, f"quiet emu.test={sevenzip}"), "EMU-7Z-BEGIN", "EMU-7Z-END", 900),
        "procs": (lambda w: virt(w, f"quiet emu.test=procs:{args.procs}"), "EMU-PROCS-BEGIN", "EMU-PROCS-END", 600),
    }
    for name in sorted(os.listdir(args.roms)):
        if name.endswith(".elf"):
            elf = os.path.join(args.roms, name)
            workloads[name[:-4]] = ((lambda e: lambda w: bare(w, e))(elf), None, None, 300)
    only = [s for s in args.only.replace(",", " ").split() if s]
    if only:
        unknown = [s for s in only if s not in workloads]
        if unknown:
            sys.exit(f"compare.py: unknown workload(s) {unknown}; known: {list(workloads)}")
        workloads = {k: v for k, v in workloads.items() if k in only}

    machine = machine_description()
    print(f"machine: {machine}", flush=True)
    for w in ("qemu", "emu"):
        cmd = virt(w, "emu.test=poweroff")
        print(f"{w}: {shlex.join(cmd)}", flush=True)
    results = {}
    phase_times = {}
    phases = phases_for(args.bios)
    for name, (build, begin, end, timeout) in workloads.items():
        times = {"qemu": [], "emu": []}
        for i in range(args.runs):
            for w in ("qemu", "emu"):  # alternating
                cmd = build(w)
                markers = [m for m in (begin, end) if m]
                if name in PHASED:
                    markers = [m for _, m in phases] + markers
                log = os.path.join(args.log_dir, f"{name}-{w}-{i}.log")
                found, total, status = run_timed(cmd, markers, timeout, log)
                if end is None and status != 0:
                    raise RuntimeError(f"{shlex.join(cmd)} exited with status {status} (log: {log})")
                t_end = found[end] if end else total
                t_begin = found[begin] if begin else 0.0
                t = t_end - t_begin
                times[w].append(t)
                if name in PHASED:
                    at = [0.0] + [found[m] for _, m in phases] + [t_end]
                    phase_times.setdefault(w, []).append([b - a for a, b in zip(at, at[1:])])
                print(f"  {name:12} {w:4} run {i + 1}: {t:8.3f} s", flush=True)
        results[name] = times

    print()
    print("| workload | QEMU 7.2 median (s) | emu median (s) | emu/QEMU |")
    print("|---|---:|---:|---:|")
    for name, times in results.items():
        q = statistics.median(times["qemu"])
        e = statistics.median(times["emu"])
        print(f"| {name} | {q:.3f} | {e:.3f} | {e / q:.2f} |")
    print()
    if phase_times:
        print_phases(phases, phase_times)
        print()
    print(f"runs: {args.runs} per emulator, alternating; machine: {machine}")


def print_phases(phases, phase_times):
    """The boot-phases table: each phase's median host time per emulator and their ratio.
    A phase ends where the console line that starts the next appears; medians of phases need not add up to
    the median of the whole boot."""
    names = [n for n, _ in phases] + ["user space: /init to its ready line"]
    print("| boot phase (ends at) | QEMU 7.2 median (s) | emu median (s) | emu/QEMU |")
    print("|---|---:|---:|---:|")
    for i, n in enumerate(names):
        q = statistics.median(r[i] for r in phase_times["qemu"])
        e = statistics.median(r[i] for r in phase_times["emu"])
        ratio = f"{e / q:.2f}" if q > 0 else "-"
        print(f"| {n} | {q:.3f} | {e:.3f} | {ratio} |")


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        sys.exit(f"compare.py: {e}")
