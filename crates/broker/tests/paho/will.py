"""A device connects with a will and is killed (SIGKILL, so no DISCONNECT);
the control center receives the will. The device runs in a child process
started from this same script with the extra argument `device`."""

import os
import signal
import subprocess
import sys
import time

from harness import TIMEOUT, Peer, ScenarioError, config, finish, things

cfg = config()
status = things("lamp-3", "status")

if sys.argv[2:] == ["device"]:
    device = Peer(cfg, "lamp-3", will=(status, "offline", 1))
    device.connect()
    print("connected", flush=True)
    # Stay connected until killed; bounded in case the parent is gone.
    time.sleep(60)
    sys.exit("device was not killed")

watcher = Peer(cfg, "control-center")
watcher.connect()
watcher.subscribe(status, 1)

child = subprocess.Popen(
    [sys.executable, __file__, sys.argv[1], "device"],
    stdin=subprocess.DEVNULL,
    stdout=subprocess.PIPE,
    text=True,
)
try:
    # readline() blocks; the Rust test's overall timeout bounds it.
    line = child.stdout.readline().strip()
    if line != "connected":
        raise ScenarioError(f"device process said {line!r} instead of connecting")
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=TIMEOUT)
finally:
    if child.poll() is None:
        child.kill()
will = watcher.next_message()
watcher.disconnect()
finish({"will": will, "device_exit": child.returncode})
