#!/usr/bin/env python3
"""Runs a cdr-bench binary and prints, after each output line, the process's CPU seconds
(user+system) consumed since the previous line: the read phase's CPU time is the figure
after the read line."""
import subprocess, sys, time
p = subprocess.Popen(["nice", "-n", "10"] + sys.argv[1:], stdout=subprocess.PIPE, text=True)
def cpu(pid):
    try:
        # nice execs the bench in place: same pid
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / 100.0
    except Exception:
        return None
last = cpu(p.pid) or 0.0
for line in p.stdout:
    now = cpu(p.pid)
    line = line.rstrip("\n")
    if now is not None and not line.startswith("cpu:"):
        print(f"{line[:110]:<110}  [cpu since previous line {now - last:6.2f} s]")
        last = now
    else:
        print(line[:200])
p.wait()
