"""Oversized input fails its own call with a clear status; the connection and its other calls go on."""
import os

import grpc
from google.protobuf import field_mask_pb2

from crm.v1 import accounts_pb2, accounts_pb2_grpc, leads_pb2, leads_pb2_grpc


def test_oversized_metadata_fails_only_its_own_call(auth):
    # A channel of its own: the connection this test may break must not be the shared one.
    with grpc.insecure_channel(os.environ["CRM_ADDRESS"]) as channel:
        accounts = accounts_pb2_grpc.AccountServiceStub(channel)
        # The first call lets the client read the server's SETTINGS (the header-list limit it raises).
        accounts.ListAccounts(accounts_pb2.ListAccountsRequest(page_size=1), metadata=auth)
        for size in (9_000, 20_000, 60_000):
            neighbour = accounts.ListAccounts.future(accounts_pb2.ListAccountsRequest(page_size=1), metadata=auth)
            try:
                accounts.ListAccounts(accounts_pb2.ListAccountsRequest(page_size=1), metadata=auth + [("x-big", "a" * size)])
                raise AssertionError(f"{size} bytes of metadata were accepted")
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (size, error.code(), error.details())
                assert "metadata" in error.details()
            neighbour.result(timeout=30)  # the call in flight beside it finished normally
        accounts.ListAccounts(accounts_pb2.ListAccountsRequest(page_size=1), metadata=auth)


def test_thousands_of_bad_mask_paths_answer_a_readable_invalid_argument(channel, auth):
    leads = leads_pb2_grpc.LeadServiceStub(channel)
    lead = leads.CreateLead(leads_pb2.CreateLeadRequest(lead=leads_pb2.Lead(last_name="Masked")), metadata=auth)
    paths = [f"no_such_field_{index}" for index in range(10_000)]
    try:
        leads.UpdateLead(
            leads_pb2.UpdateLeadRequest(lead=leads_pb2.Lead(id=lead.id, last_name="Changed"), update_mask=field_mask_pb2.FieldMask(paths=paths)),
            metadata=auth)
        raise AssertionError("10,000 unknown paths were accepted")
    except grpc.RpcError as error:
        # A default client reads it: no "metadata size exceeds hard limit" in place of the answer.
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
        assert "update_mask" in error.details()
    assert leads.GetLead(leads_pb2.GetLeadRequest(id=lead.id), metadata=auth).last_name == "Masked"
