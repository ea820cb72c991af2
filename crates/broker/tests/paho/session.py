"""A persistent session (clean session 0 / clean start 0 with a session
expiry) keeps its subscription while the client is away, and the QoS 1
messages published meanwhile arrive, in order, when it reconnects."""

from harness import Peer, config, finish, things

cfg = config()
telemetry = things("lamp-4", "telemetry")

away = Peer(cfg, "control-center", persistent=True)
first_present = away.connect(clean_start=True)
away.subscribe("city/+/things/+/telemetry", 1)
away.disconnect()

lamp = Peer(cfg, "lamp-4")
lamp.connect()
for i in range(3):
    lamp.publish(telemetry, f"while away {i}", qos=1)
lamp.disconnect()

back = Peer(cfg, "control-center", persistent=True)
resumed_present = back.connect(clean_start=False)
# No SUBSCRIBE this time: the session's subscription must still be there.
received = [back.next_message() for _ in range(3)]
back.disconnect()
finish(
    {
        "first_session_present": first_present,
        "resumed_session_present": resumed_present,
        "received": received,
    }
)
