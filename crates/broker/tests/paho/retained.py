"""A retained message reaches a subscriber that arrives later; once
cleared by an empty retained payload, a new subscriber gets nothing
retained, only live traffic."""

from harness import Peer, config, finish, things

cfg = config()
state = things("lamp-2", "state")
lamp = Peer(cfg, "lamp-2")
lamp.connect()
lamp.publish(state, "on", qos=1, retain=True)

first = Peer(cfg, "control-center")
first.connect()
first.subscribe(state, 1)
retained = first.next_message()
first.disconnect()

lamp.publish(state, "", qos=1, retain=True)
later = Peer(cfg, "control-center")
later.connect()
later.subscribe(state, 1)
lamp.publish(state, "live", qos=1, retain=False)
after_clear = later.next_message()
later.disconnect()
lamp.disconnect()
finish({"retained": retained, "after_clear": after_clear})
