"""A device written with the AWS IoT Device SDK v2 for Python, pointed at
civitas: it waits for a desired-state delta on its classic shadow, reports
the state it was asked for, and reads the shadow back.

Run by crates/shadow/tests/aws_sdk.rs. Prints one JSON object per line on
stdout: {"event": "ready"} once it listens for deltas (the test then sets
the desired state), then "delta", "update_accepted", "get" and "done". Any
failure prints {"event": "error", ...} and exits non-zero; every wait is
bounded by --timeout.

--protocol 3.1.1 uses IotShadowClient over an awscrt.mqtt.Connection;
--protocol 5 uses IotShadowClientV2 over an awscrt.mqtt5.Client.
"""

import argparse
import json
import os
import queue
import sys
import threading
import traceback

from awscrt import mqtt, mqtt5, mqtt_request_response
from awsiot import ServiceStreamOptions, iotshadow, mqtt5_client_builder, mqtt_connection_builder


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def fail(message):
    emit("error", message=message)
    sys.exit(1)


def expire():
    emit("error", message="watchdog: the flow did not finish")
    os._exit(2)


def get(q, what, timeout):
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        fail(f"no {what} within {timeout} s")


def connection_args(args):
    return dict(
        endpoint=args.endpoint,
        port=args.port,
        cert_filepath=args.cert,
        pri_key_filepath=args.key,
        ca_filepath=args.ca,
        client_id=args.client_id,
    )


def run_v311(args):
    t = args.timeout
    connection = mqtt_connection_builder.mtls_from_path(
        **connection_args(args), clean_session=True, keep_alive_secs=30
    )
    connection.connect().result(t)
    shadow = iotshadow.IotShadowClient(connection)
    thing = args.thing
    qos = mqtt.QoS.AT_LEAST_ONCE

    deltas = queue.Queue()
    updates = queue.Queue()
    gets = queue.Queue()
    subscriptions = [
        shadow.subscribe_to_shadow_delta_updated_events(
            iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing), qos, deltas.put
        ),
        shadow.subscribe_to_update_shadow_accepted(
            iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing),
            qos,
            lambda r: updates.put(("accepted", r)),
        ),
        shadow.subscribe_to_update_shadow_rejected(
            iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing),
            qos,
            lambda e: updates.put(("rejected", e)),
        ),
        shadow.subscribe_to_get_shadow_accepted(
            iotshadow.GetShadowSubscriptionRequest(thing_name=thing),
            qos,
            lambda r: gets.put(("accepted", r)),
        ),
        shadow.subscribe_to_get_shadow_rejected(
            iotshadow.GetShadowSubscriptionRequest(thing_name=thing),
            qos,
            lambda e: gets.put(("rejected", e)),
        ),
    ]
    for future, _topic in subscriptions:
        future.result(t)
    emit("ready")

    delta = get(deltas, "delta", t)
    emit("delta", state=delta.state, version=delta.version, client_token=delta.client_token)

    token = "report-1"
    shadow.publish_update_shadow(
        iotshadow.UpdateShadowRequest(
            thing_name=thing,
            state=iotshadow.ShadowState(reported=delta.state),
            client_token=token,
        ),
        qos,
    ).result(t)
    # The operator's own update was accepted on the same topic: skip it.
    while True:
        outcome, reply = get(updates, "update reply", t)
        if reply.client_token == token:
            break
    if outcome != "accepted":
        fail(f"update rejected: {reply.code} {reply.message}")
    emit(
        "update_accepted",
        reported=reply.state.reported,
        version=reply.version,
        client_token=reply.client_token,
    )

    shadow.publish_get_shadow(
        iotshadow.GetShadowRequest(thing_name=thing, client_token="get-1"), qos
    ).result(t)
    outcome, got = get(gets, "get reply", t)
    if outcome != "accepted":
        fail(f"get rejected: {got.code} {got.message}")
    emit(
        "get",
        desired=got.state.desired,
        reported=got.state.reported,
        delta=got.state.delta,
        version=got.version,
        client_token=got.client_token,
    )
    connection.disconnect().result(t)
    emit("done")


def run_v5(args):
    t = args.timeout
    connected = threading.Event()
    stopped = threading.Event()
    failures = queue.Queue()
    client = mqtt5_client_builder.mtls_from_path(
        **connection_args(args),
        on_lifecycle_connection_success=lambda _: connected.set(),
        on_lifecycle_connection_failure=lambda d: failures.put(str(d.exception)),
        on_lifecycle_stopped=lambda _: stopped.set(),
    )
    client.start()
    if not connected.wait(t):
        reason = failures.get_nowait() if not failures.empty() else "no CONNACK"
        fail(f"MQTT 5 connection failed: {reason}")
    shadow = iotshadow.IotShadowClientV2(
        client,
        mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=2,
            max_streaming_subscriptions=2,
            operation_timeout_in_seconds=int(t),
        ),
    )
    thing = args.thing

    deltas = queue.Queue()
    subscribed = queue.Queue()
    stream = shadow.create_shadow_delta_updated_stream(
        iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing),
        ServiceStreamOptions(
            incoming_event_listener=deltas.put,
            subscription_status_listener=subscribed.put,
        ),
    )
    stream.open()
    status = get(subscribed, "delta subscription", t)
    if status.type != mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED:
        fail(f"delta subscription not established: {status.type.name} {status.error}")
    emit("ready")

    delta = get(deltas, "delta", t)
    emit("delta", state=delta.state, version=delta.version, client_token=delta.client_token)

    # The V2 client sets the client token itself, to match the reply.
    reply = shadow.update_shadow(
        iotshadow.UpdateShadowRequest(
            thing_name=thing, state=iotshadow.ShadowState(reported=delta.state)
        )
    ).result(t)
    emit(
        "update_accepted",
        reported=reply.state.reported,
        version=reply.version,
        client_token=reply.client_token,
    )

    got = shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=thing)).result(t)
    emit(
        "get",
        desired=got.state.desired,
        reported=got.state.reported,
        delta=got.state.delta,
        version=got.version,
        client_token=got.client_token,
    )
    client.stop()
    if not stopped.wait(t):
        fail("the MQTT 5 client did not stop")
    emit("done")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", default="localhost")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--thing", required=True)
    parser.add_argument("--protocol", choices=["3.1.1", "5"], default="3.1.1")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    # A hung native call must not outlive the test either.
    watchdog = threading.Timer(6 * args.timeout, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        (run_v5 if args.protocol == "5" else run_v311)(args)
    except SystemExit:
        raise
    except BaseException as e:  # report anything, then fail
        fail(f"{type(e).__name__}: {e}\n{traceback.format_exc()}")


if __name__ == "__main__":
    main()
