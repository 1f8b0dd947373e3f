"""Shared fixtures: a channel to the crmd that scripts/test.sh started, and the admin's metadata."""
import os
import time

import grpc
import pytest


@pytest.fixture(scope="session")
def channel():
    address = os.environ.get("CRM_ADDRESS")
    if not address:
        pytest.fail("CRM_ADDRESS is not set: run the interop tests through scripts/test.sh")
    with grpc.insecure_channel(address) as ch:
        grpc.channel_ready_future(ch).result(timeout=30)
        yield ch


@pytest.fixture(scope="session")
def auth():
    token = os.environ.get("CRM_TOKEN")
    if not token:
        pytest.fail("CRM_TOKEN is not set: run the interop tests through scripts/test.sh")
    return [("authorization", "Bearer " + token)]


def wait_until(what, condition, bound=60.0, every=0.05):
    """Polls `condition` until it returns something truthy, and returns that; fails loudly after
    `bound` seconds. Tests act on what they observe, never on how long something should take: the
    pause between polls only paces the polling (as Tests/Support/Waiting.swift does for Swift)."""
    deadline = time.monotonic() + bound
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"waited {bound} s for {what}, and it never came")
        time.sleep(every)
