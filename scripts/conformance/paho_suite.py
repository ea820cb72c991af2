"""Run one Eclipse Paho interoperability suite against a broker.

The upstream scripts read host and port from module globals set in their
__main__ block, so this wrapper imports the suite, sets those globals and
runs each test in a child process with a time cap (a broker that never
disconnects a client exceeding Receive Maximum makes test_flow_control2
loop forever).

usage: paho_suite.py PAHO_INTEROPERABILITY_DIR client_test|client_test5 HOST PORT [TEST]
"""

import importlib
import json
import subprocess
import sys
import time
import unittest


def load(paho_dir, suite, host, port):
    sys.path.insert(0, paho_dir)
    module = importlib.import_module(suite)
    module.host = host
    module.port = port
    module.topics = ("TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA")
    module.wildtopics = ("TopicA/+", "+/C", "#", "/#", "/+", "+/+", "TopicA/#")
    module.nosubscribe_topics = ("test/nosubscribe",)
    if suite == "client_test5":
        # setData() resets topics; give it the same values.
        module.topic_prefix = "client_test5/"
    return module


def run_one(paho_dir, suite, host, port, name):
    module = load(paho_dir, suite, host, port)
    test = unittest.TestLoader().loadTestsFromName("Test." + name, module)
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=0).run(test)
    sys.exit(0 if result.wasSuccessful() else 1)


def main():
    paho_dir, suite, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if len(sys.argv) > 5:
        run_one(paho_dir, suite, host, port, sys.argv[5])
    module = load(paho_dir, suite, host, port)
    names = unittest.TestLoader().getTestCaseNames(module.Test)
    results = {}
    for name in names:
        start = time.time()
        try:
            proc = subprocess.run(
                [sys.executable, __file__, paho_dir, suite, host, str(port), name],
                capture_output=True, text=True, timeout=60)
            outcome = "pass" if proc.returncode == 0 else "FAIL"
            detail = proc.stderr.strip().splitlines()[-3:] if proc.returncode else []
        except subprocess.TimeoutExpired:
            outcome, detail = "TIMEOUT", ["no result within 60 s"]
        results[name] = outcome
        print(f"{suite}.{name}: {outcome} ({time.time() - start:.1f} s)", flush=True)
        for line in detail:
            print(f"    {line}", flush=True)
    passed = sum(1 for o in results.values() if o == "pass")
    print(f"{suite}: {passed} passed, {len(results) - passed} failed", flush=True)
    print(json.dumps({"suite": suite, "results": results}))


if __name__ == "__main__":
    main()
