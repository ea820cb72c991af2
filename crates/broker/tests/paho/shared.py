"""Two members of one shared subscription group ($share/fleet/...) split a
device's readings: each reading reaches exactly one member. A plain
subscription to an end topic, published after the readings by the same
device, tells each member it has seen all of its share."""

from harness import Peer, config, finish, things

cfg = config()
telemetry = things("lamp-5", "telemetry")
end = things("lamp-5", "end")
readings = [f"reading {i}" for i in range(cfg.raw["readings"])]

members = {}
for name in ("control-center", "dispatch"):
    peer = Peer(cfg, name)
    peer.connect()
    peer.subscribe("$share/fleet/city/+/things/lamp-5/telemetry", 1)
    peer.subscribe(end, 1)
    members[name] = peer

lamp = Peer(cfg, "lamp-5")
lamp.connect()
for r in readings:
    lamp.publish(telemetry, r, qos=1)
lamp.publish(end, "end", qos=1)
lamp.disconnect()

got = {}
for name, peer in members.items():
    mine = []
    while True:
        m = peer.next_message()
        if m["topic"] == end:
            break
        mine.append(m)
    got[name] = mine
    peer.disconnect()
finish({"sent": readings, "members": got})
