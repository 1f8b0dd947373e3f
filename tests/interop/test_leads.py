"""Leads and duplicate detection through Python grpcio."""
import uuid

import grpc
import pytest

from crm.v1 import common_pb2, contacts_pb2, duplicates_pb2, duplicates_pb2_grpc, leads_pb2, leads_pb2_grpc


def test_lead_lifecycle_and_duplicates(channel, auth):
    leads = leads_pb2_grpc.LeadServiceStub(channel)
    duplicates = duplicates_pb2_grpc.DuplicateServiceStub(channel)
    run = uuid.uuid4().hex[:8]
    domain = f"py{run}.example"
    lead = leads.CreateLead(
        leads_pb2.CreateLeadRequest(
            lead=leads_pb2.Lead(
                first_name="Ada", last_name="Lovelace", company=f"Analytical Engines {run} Ltd.",
                emails=[contacts_pb2.ContactEmail(address=f"Ada+Form@{domain}")],
                source=leads_pb2.LEAD_SOURCE_WEB_FORM, utm=leads_pb2.UtmParameters(source="newsletter"),
            )
        ),
        metadata=auth,
    )
    assert lead.status == leads_pb2.LEAD_STATUS_NEW
    assert lead.emails[0].address == f"ada+form@{domain}"

    with pytest.raises(grpc.RpcError) as caught:
        leads.SetLeadStatus(leads_pb2.SetLeadStatusRequest(id=lead.id, status=leads_pb2.LEAD_STATUS_CONVERTED), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    qualified = leads.SetLeadStatus(
        leads_pb2.SetLeadStatusRequest(id=lead.id, status=leads_pb2.LEAD_STATUS_QUALIFIED, etag=lead.etag), metadata=auth
    )
    assert qualified.status == leads_pb2.LEAD_STATUS_QUALIFIED

    answer = duplicates.FindDuplicates(
        duplicates_pb2.FindDuplicatesRequest(
            candidate=duplicates_pb2.DuplicateCandidate(emails=[f"ada@{domain}"], company=f"Analytical Engines {run}"),
            record_types=[common_pb2.RECORD_TYPE_LEAD],
            ignore_plus_tags=True,
        ),
        metadata=auth,
    )
    # Best first: the lead with the same email and company; leads of other runs may follow on a similar name.
    assert answer.matches[0].record_id == lead.id
    assert {r.key for r in answer.matches[0].reasons} == {"email", "company_name"}
    assert answer.matches[0].score > 0.9
