"""Webhooks end to end: crmd delivers to the Python receiver in docs/examples, and an independent
Standard Webhooks implementation (the `standardwebhooks` package) verifies every signature."""
import os
import queue
import sys
import threading
import uuid

import grpc
import pytest
import standardwebhooks

from conftest import wait_until
from crm.v1 import leads_pb2, leads_pb2_grpc, webhooks_pb2, webhooks_pb2_grpc

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "docs", "examples"))
import webhook_receiver  # noqa: E402


def test_deliveries_verify_with_the_example_and_the_reference_library(channel, auth):
    run = uuid.uuid4().hex[:8]
    webhooks = webhooks_pb2_grpc.WebhookServiceStub(channel)
    leads = leads_pb2_grpc.LeadServiceStub(channel)
    arrived = queue.Queue()
    verifier_box = {}
    server = webhook_receiver.make_server(
        # The secret is only known once the subscription exists; the server reads it per request.
        type("Late", (), {"verify": lambda self, headers, body: verifier_box["v"].verify(headers, body)})(),
        lambda message_id, event, headers, body: arrived.put((message_id, event, headers, body)),
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        created = webhooks.CreateWebhook(
            webhooks_pb2.CreateWebhookRequest(
                webhook=webhooks_pb2.Webhook(
                    url=f"http://127.0.0.1:{server.server_address[1]}/crm",
                    event_types=["lead.created", "lead.updated"],
                    description=f"interop {run}",
                    active=True,
                )
            ),
            metadata=auth,
        )
        assert created.secret.startswith("whsec_")
        verifier_box["v"] = webhook_receiver.Verifier(created.secret)
        lead = leads.CreateLead(leads_pb2.CreateLeadRequest(lead=leads_pb2.Lead(last_name=f"Hook {run}")), metadata=auth)
        leads.UpdateLead(
            leads_pb2.UpdateLeadRequest(lead=leads_pb2.Lead(id=lead.id, company=f"Hook Co {run}"), update_mask={"paths": ["company"]}),
            metadata=auth,
        )
        # crmd's own dispatcher delivers (no test hook drives it): the bound only fails loudly.
        got = [arrived.get(timeout=60), arrived.get(timeout=60)]
        reference = standardwebhooks.Webhook(created.secret)
        for message_id, event, headers, body in got:
            assert reference.verify(body, headers) == event
            assert event["data"]["cursor"] == message_id
            assert event["data"]["change"]["recordId"] == lead.id
        assert [event["type"] for _, event, _, _ in got] == ["lead.created", "lead.updated"]
        assert [c["field"] for c in got[1][1]["data"]["change"]["changes"]] == ["company"]
        # A body changed in transit fails both verifiers.
        _, _, headers, body = got[0]
        with pytest.raises(webhook_receiver.InvalidSignature):
            webhook_receiver.Verifier(created.secret).verify(headers, body.replace(b"Hook", b"Hack"))
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            reference.verify(body.replace(b"Hook", b"Hack"), headers)
        # crmd writes successes down in batches, just after the receiver answered: wait for them.
        def listed():
            found = webhooks.ListWebhookDeliveries(
                webhooks_pb2.ListWebhookDeliveriesRequest(webhook_id=created.webhook.id), metadata=auth
            ).deliveries
            return found if len(found) >= 2 else None

        deliveries = wait_until("both deliveries in ListWebhookDeliveries", listed)
        assert [d.status for d in deliveries] == [webhooks_pb2.WEBHOOK_DELIVERY_STATUS_SUCCEEDED] * 2
        assert all(d.response_status == 204 for d in deliveries)
        with pytest.raises(grpc.RpcError) as bad:
            webhooks.CreateWebhook(
                webhooks_pb2.CreateWebhookRequest(webhook=webhooks_pb2.Webhook(url="gopher://x", event_types=["lead.*"])),
                metadata=auth,
            )
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "webhook.url" in bad.value.details()
    finally:
        server.shutdown()
        if "created" in locals():
            webhooks.DeleteWebhook(webhooks_pb2.DeleteWebhookRequest(id=created.webhook.id), metadata=auth)
