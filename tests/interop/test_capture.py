"""CaptureLead and capture keys through Python grpcio: any language's web backend or mail relay can feed leads."""
import uuid

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from crm.v1 import capture_pb2, capture_pb2_grpc, common_pb2, leads_pb2, leads_pb2_grpc


def test_email_then_form_from_the_same_person(channel, auth):
    capture = capture_pb2_grpc.CaptureServiceStub(channel)
    leads = leads_pb2_grpc.LeadServiceStub(channel)
    tag = uuid.uuid4().hex[:8]
    address = f"buyer-{tag}@py.example"
    raw = (
        f"From: =?UTF-8?B?546L5bCP5piO?= <{address.upper()}>\r\n"
        f"Subject: Pricing for 50 seats\r\n"
        f"Message-ID: <{tag}@py.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "Could you send a quote =E2=80=94 thanks?\r\n"
    ).encode()
    request = capture_pb2.CaptureLeadRequest(email=capture_pb2.InboundEmail(raw=raw), campaign="py-interop")
    created = capture.CaptureLead(request, metadata=auth)
    assert created.outcome == capture_pb2.CaptureLeadResponse.OUTCOME_CREATED_LEAD
    assert created.record.record_type == common_pb2.RECORD_TYPE_LEAD
    assert created.message_id == f"{tag}@py.example"
    lead = leads.GetLead(leads_pb2.GetLeadRequest(id=created.record.record_id), metadata=auth)
    assert lead.last_name == "王小明" and [e.address for e in lead.emails] == [address]
    assert lead.source == leads_pb2.LEAD_SOURCE_EMAIL and lead.campaign == "py-interop"

    # The mail relay retries: nothing new.
    replayed = capture.CaptureLead(request, metadata=auth)
    assert replayed.replayed and replayed.interaction_id == created.interaction_id

    # Later the same person fills in a form: logged on the same lead.
    form = capture_pb2.CaptureLeadRequest(
        web_form=capture_pb2.WebFormSubmission(fields={"email": address, "message": "Still interested"}, form_name="Demo")
    )
    logged = capture.CaptureLead(form, metadata=auth)
    assert logged.outcome == capture_pb2.CaptureLeadResponse.OUTCOME_LOGGED_ON_LEAD
    assert logged.record.record_id == created.record.record_id


def test_capture_key_scope_and_rate_limit(channel, auth):
    capture = capture_pb2_grpc.CaptureServiceStub(channel)
    issued = capture.CreateCaptureKey(
        capture_pb2.CreateCaptureKeyRequest(channel=leads_pb2.LEAD_SOURCE_WEB_FORM, name="py", rate_limit_per_minute=2),
        metadata=auth,
    )
    key = [("authorization", "Bearer " + issued.secret)]
    try:
        form = lambda n: capture_pb2.CaptureLeadRequest(  # noqa: E731
            web_form=capture_pb2.WebFormSubmission(fields={"email": f"visitor-{uuid.uuid4().hex[:8]}@py.example", "n": n})
        )
        accepted = capture.CaptureLead(form("1"), metadata=key)
        assert accepted.outcome == capture_pb2.CaptureLeadResponse.OUTCOME_ACCEPTED
        assert not accepted.HasField("record")

        with pytest.raises(grpc.RpcError) as denied:
            leads_pb2_grpc.LeadServiceStub(channel).ListLeads(leads_pb2.ListLeadsRequest(), metadata=key)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

        capture.CaptureLead(form("2"), metadata=key)
        with pytest.raises(grpc.RpcError) as limited:
            capture.CaptureLead(form("3"), metadata=key)
        assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        status = rpc_status.from_call(limited.value)
        delays = []
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                delays.append(info.retry_delay.ToMilliseconds())
        assert len(delays) == 1 and 0 < delays[0] <= 30_000
    finally:
        capture.RevokeCaptureKey(capture_pb2.RevokeCaptureKeyRequest(id=issued.key.id), metadata=auth)
    with pytest.raises(grpc.RpcError) as revoked:
        capture.CaptureLead(form("4"), metadata=key)
    assert revoked.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_invalid_form_names_the_field(channel, auth):
    capture = capture_pb2_grpc.CaptureServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        capture.CaptureLead(
            capture_pb2.CaptureLeadRequest(web_form=capture_pb2.WebFormSubmission(fields={"email": "nope"})), metadata=auth
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    assert fields == ['web_form.fields["email"]']
