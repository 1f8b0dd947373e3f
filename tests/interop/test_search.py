"""Search through Python grpcio: accents, CJK substrings, phone numbers in any format, bad input named."""
import uuid

import grpc
import pytest

from crm.v1 import common_pb2, contacts_pb2, contacts_pb2_grpc, leads_pb2, leads_pb2_grpc, search_pb2, search_pb2_grpc


def test_search(channel, auth):
    run = uuid.uuid4().hex[:8]
    other = uuid.uuid4().hex[:8]  # the contact's own suffix: a shared one would make the two near matches
    lead = leads_pb2_grpc.LeadServiceStub(channel).CreateLead(
        leads_pb2.CreateLeadRequest(
            lead=leads_pb2.Lead(first_name="Zoë", last_name=f"Müller{run}", company=f"北京销售易{run}科技有限公司")
        ),
        metadata=auth,
    )
    contact = contacts_pb2_grpc.ContactServiceStub(channel).CreateContact(
        contacts_pb2.CreateContactRequest(contact=contacts_pb2.Contact(first_name="Grace", last_name=f"Hopper{other}")),
        metadata=auth,
    )
    search = search_pb2_grpc.SearchServiceStub(channel)

    def ids(query, **fields):
        response = search.Search(search_pb2.SearchRequest(query=query, **fields), metadata=auth)
        return [result.lead.id or result.contact.id or result.account.id for result in response.results]

    assert ids(f"muller{run}") == [lead.id]
    assert ids(f"销售易{run}") == [lead.id]
    assert ids(f"hopper{other}", record_types=[common_pb2.RECORD_TYPE_CONTACT]) == [contact.id]
    assert ids(f"hopper{other}", record_types=[common_pb2.RECORD_TYPE_LEAD]) == []
    with pytest.raises(grpc.RpcError) as error:
        search.Search(search_pb2.SearchRequest(query="x"), metadata=auth)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "query" in error.value.details()
