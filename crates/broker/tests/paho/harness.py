"""Plumbing shared by the paho-mqtt interoperability scenarios.

Each scenario script is run by the Rust test `tests/paho.rs` with one
argument, a JSON object: host, port, version ("3.1.1" or "5"), ca, and
identities (client id -> {cert, key}). It drives real paho-mqtt clients
over mutual TLS, prints one JSON object with what it observed on stdout,
and exits non-zero (with a traceback) when something fails or times out.
"""

import json
import queue
import sys

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

# Bound on every single wait; the Rust side bounds the whole script too.
TIMEOUT = 10.0


class Config:
    def __init__(self, raw):
        self.host = raw["host"]
        self.port = int(raw["port"])
        self.version = raw["version"]
        self.ca = raw["ca"]
        self.identities = raw["identities"]
        self.raw = raw

    @property
    def v5(self):
        return self.version == "5"


def config():
    if len(sys.argv) < 2:
        sys.exit("usage: <script> '<json config>'")
    return Config(json.loads(sys.argv[1]))


def finish(result):
    """Report what the scenario observed to the Rust test."""
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()


def message_dict(message):
    return {
        "topic": message.topic,
        "payload": message.payload.decode("utf-8"),
        "qos": message.qos,
        "retain": bool(message.retain),
    }


class ScenarioError(Exception):
    pass


def get(q, what, timeout=TIMEOUT):
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        raise ScenarioError(f"timed out after {timeout}s waiting for {what}") from None


class Peer:
    """One paho client over mutual TLS, its network loop in a thread and
    everything it receives on queues."""

    def __init__(self, cfg, identity, *, persistent=False, will=None):
        self.cfg = cfg
        self.identity = identity
        self.persistent = persistent
        files = cfg.identities[identity]
        if cfg.v5:
            client = mqtt.Client(
                callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                client_id=identity,
                protocol=mqtt.MQTTv5,
            )
        else:
            client = mqtt.Client(
                callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                client_id=identity,
                protocol=mqtt.MQTTv311,
                clean_session=not persistent,
            )
        client.tls_set(ca_certs=cfg.ca, certfile=files["cert"], keyfile=files["key"])
        if will is not None:
            topic, payload, qos = will
            client.will_set(topic, payload, qos=qos, retain=False)
        self.connacks = queue.Queue()
        self.subacks = queue.Queue()
        self.messages = queue.Queue()
        self.disconnects = queue.Queue()
        client.on_connect = lambda c, u, flags, rc, props: self.connacks.put(
            (rc, flags.session_present)
        )
        client.on_subscribe = lambda c, u, mid, rcs, props: self.subacks.put((mid, rcs))
        client.on_message = lambda c, u, m: self.messages.put(message_dict(m))
        client.on_disconnect = lambda c, u, flags, rc, props: self.disconnects.put(rc)
        self.client = client

    def connect(self, *, clean_start=True):
        """Connect and wait for CONNACK; returns session present. For MQTT 5
        a persistent peer asks for a session that outlives the connection."""
        if self.cfg.v5:
            props = None
            if self.persistent:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = 3600
            self.client.connect(
                self.cfg.host, self.cfg.port, keepalive=30, clean_start=clean_start, properties=props
            )
        else:
            self.client.connect(self.cfg.host, self.cfg.port, keepalive=30)
        self.client.loop_start()
        rc, session_present = get(self.connacks, f"CONNACK for {self.identity}")
        if rc.is_failure:
            raise ScenarioError(f"{self.identity} refused: {rc}")
        return bool(session_present)

    def subscribe(self, topic_filter, qos):
        """Subscribe and wait for the SUBACK: the broker then routes to us."""
        result, mid = self.client.subscribe(topic_filter, qos)
        if result != mqtt.MQTT_ERR_SUCCESS:
            raise ScenarioError(f"subscribe {topic_filter}: {mqtt.error_string(result)}")
        got_mid, codes = get(self.subacks, f"SUBACK for {topic_filter}")
        if got_mid != mid:
            raise ScenarioError(f"SUBACK for mid {got_mid}, expected {mid}")
        if any(c.is_failure for c in codes):
            raise ScenarioError(f"subscribe {topic_filter} refused: {codes}")
        return [c.value for c in codes]

    def publish(self, topic, payload, qos=1, retain=False):
        """Publish and, for QoS 1/2, wait until the broker acknowledged."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=TIMEOUT)
        if not info.is_published():
            raise ScenarioError(f"publish to {topic} not completed within {TIMEOUT}s")

    def next_message(self):
        return get(self.messages, f"a message for {self.identity}")

    def disconnect(self):
        """A normal DISCONNECT (no will)."""
        self.client.disconnect()
        get(self.disconnects, f"disconnect of {self.identity}")
        self.client.loop_stop()


def things(device, rest):
    return f"city/centre/things/{device}/{rest}"
