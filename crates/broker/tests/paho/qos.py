"""A device publishes at QoS 0, 1 and 2; the control center, subscribed at
QoS 2, receives each message once at the QoS it was published with."""

from harness import Peer, config, finish, things

cfg = config()
watcher = Peer(cfg, "control-center")
watcher.connect()
granted = watcher.subscribe("city/+/things/lamp-1/#", 2)

lamp = Peer(cfg, "lamp-1")
lamp.connect()
for qos in (0, 1, 2):
    lamp.publish(things("lamp-1", f"telemetry/{qos}"), f"reading at qos {qos}", qos=qos)
received = [watcher.next_message() for _ in range(3)]
lamp.disconnect()
watcher.disconnect()
finish({"granted": granted, "received": received})
