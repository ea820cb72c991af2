"""paho-mqtt over secure WebSocket against a civitas wss listener.

Run by `tests/websocket.rs` with one JSON argument: host, port, path, ca,
version ("3.1.1" or "5"), client_id, topic, payload, and either cert and
key (mutual TLS) or username and password. One client subscribes to
`topic`, publishes `payload` there at QoS 1 and waits for it to come
back through the broker. Prints one JSON object with what it observed;
exits non-zero when something fails or times out.
"""

import json
import queue
import sys

import paho.mqtt.client as mqtt

TIMEOUT = 10.0


def get(q, what):
    try:
        return q.get(timeout=TIMEOUT)
    except queue.Empty:
        raise SystemExit(f"timed out after {TIMEOUT}s waiting for {what}") from None


def main():
    cfg = json.loads(sys.argv[1])
    v5 = cfg["version"] == "5"
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=cfg["client_id"],
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        transport="websockets",
    )
    client.ws_set_options(path=cfg["path"])
    client.tls_set(ca_certs=cfg["ca"], certfile=cfg.get("cert"), keyfile=cfg.get("key"))
    if "username" in cfg:
        client.username_pw_set(cfg["username"], cfg["password"])

    connacks, subacks, messages = queue.Queue(), queue.Queue(), queue.Queue()
    client.on_connect = lambda c, u, flags, rc, props: connacks.put(rc)
    client.on_subscribe = lambda c, u, mid, rcs, props: subacks.put(rcs)
    client.on_message = lambda c, u, m: messages.put(m)

    client.connect(cfg["host"], int(cfg["port"]), keepalive=30)
    client.loop_start()
    try:
        rc = get(connacks, "CONNACK")
        if rc.is_failure:
            raise SystemExit(f"connection refused: {rc}")
        client.subscribe(cfg["topic"], qos=1)
        granted = get(subacks, "SUBACK")
        if any(r.is_failure for r in granted):
            raise SystemExit(f"subscription refused: {granted}")
        client.publish(cfg["topic"], cfg["payload"], qos=1).wait_for_publish(TIMEOUT)
        m = get(messages, "the message back")
        result = {
            "connack": str(rc),
            "topic": m.topic,
            "payload": m.payload.decode("utf-8"),
            "qos": m.qos,
        }
    finally:
        client.disconnect()
        client.loop_stop()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
