"""Shared fixtures: a channel to the crmd that scripts/test.sh started, and the admin's metadata."""
import os

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
