"""Lead conversion, pipelines and stage moves through Python grpcio."""
import uuid

import grpc
import pytest

from crm.v1 import (
    common_pb2,
    contacts_pb2,
    leads_pb2,
    leads_pb2_grpc,
    opportunities_pb2,
    opportunities_pb2_grpc,
)


def test_convert_lead_then_move_the_deal(channel, auth):
    leads = leads_pb2_grpc.LeadServiceStub(channel)
    deals = opportunities_pb2_grpc.OpportunityServiceStub(channel)
    run = uuid.uuid4().hex[:8]
    lead = leads.CreateLead(
        leads_pb2.CreateLeadRequest(
            lead=leads_pb2.Lead(
                first_name="Katherine", last_name="Johnson", company=f"Orbital {run}",
                emails=[contacts_pb2.ContactEmail(address=f"kj@orbital{run}.example")],
            )
        ),
        metadata=auth,
    )
    request = leads_pb2.ConvertLeadRequest(
        lead_id=lead.id,
        etag=lead.etag,
        opportunity=opportunities_pb2.Opportunity(
            amount=common_pb2.Money(currency_code="USD", units=12000),
            close_date=common_pb2.Date(year=2027, month=5, day=1),
        ),
        request_id=f"convert-{run}",
    )
    result = leads.ConvertLead(request, metadata=auth)
    assert result.account_created and result.contact_created
    assert result.account.name == f"Orbital {run}"
    assert result.contact.account_id == result.account.id
    assert result.opportunity.source_lead_id == lead.id
    assert result.lead.status == leads_pb2.LEAD_STATUS_CONVERTED
    assert result.lead.converted_opportunity_id == result.opportunity.id
    # The same request id answers the same conversion; another conversion is refused.
    assert leads.ConvertLead(request, metadata=auth).account.id == result.account.id
    with pytest.raises(grpc.RpcError) as caught:
        leads.ConvertLead(leads_pb2.ConvertLeadRequest(lead_id=lead.id), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    pipeline = next(p for p in deals.ListPipelines(opportunities_pb2.ListPipelinesRequest(), metadata=auth).pipelines if p.is_default)
    negotiation = next(s for s in pipeline.stages if s.name == "Negotiation")
    moved = deals.MoveOpportunityStage(
        opportunities_pb2.MoveOpportunityStageRequest(
            id=result.opportunity.id, stage_id=negotiation.id, etag=result.opportunity.etag
        ),
        metadata=auth,
    )
    assert moved.stage_name == "Negotiation" and moved.probability == 80
    with pytest.raises(grpc.RpcError) as caught:
        deals.MoveOpportunityStage(
            opportunities_pb2.MoveOpportunityStageRequest(id=moved.id, stage_id=negotiation.id, etag=result.opportunity.etag),
            metadata=auth,
        )
    assert caught.value.code() == grpc.StatusCode.ABORTED
    lost = deals.CloseOpportunityLost(
        opportunities_pb2.CloseOpportunityLostRequest(id=moved.id, lost_reason="Budget cut"), metadata=auth
    )
    assert lost.state == opportunities_pb2.STAGE_CATEGORY_LOST and lost.lost_reason == "Budget cut"
    history = deals.GetStageHistory(opportunities_pb2.GetStageHistoryRequest(opportunity_id=lost.id), metadata=auth)
    assert [c.to_stage_name for c in history.changes] == ["Prospecting", "Negotiation", "Closed lost"]
