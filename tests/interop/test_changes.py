"""The change feed through Python grpcio: a write with x-client-origin comes back in the feed (streamed), in order."""
import uuid

import grpc
import pytest

from crm.v1 import changes_pb2, changes_pb2_grpc, common_pb2, leads_pb2, leads_pb2_grpc


def test_feed_carries_writes_with_their_origin(channel, auth):
    run = uuid.uuid4().hex[:8]
    leads = leads_pb2_grpc.LeadServiceStub(channel)
    changes = changes_pb2_grpc.ChangeServiceStub(channel)
    # Where the feed ends now, so only this test's changes count.
    cursor = ""
    while True:
        page = changes.ListChanges(changes_pb2.ListChangesRequest(cursor=cursor, page_size=1000), metadata=auth)
        if page.next_cursor == cursor:
            break
        cursor = page.next_cursor
    lead = leads.CreateLead(
        leads_pb2.CreateLeadRequest(lead=leads_pb2.Lead(last_name=f"Feed {run}")),
        metadata=auth + [("x-client-origin", f"py-sync-{run}")],
    )
    leads.UpdateLead(
        leads_pb2.UpdateLeadRequest(lead=leads_pb2.Lead(id=lead.id, company=f"Feed Co {run}"), update_mask={"paths": ["company"]}),
        metadata=auth,
    )
    # Follow the feed as a stream (no polling): the call's deadline bounds the wait and fails loudly.
    seen = []
    stream = changes.StreamChanges(
        changes_pb2.StreamChangesRequest(cursor=cursor, record_types=[common_pb2.RECORD_TYPE_LEAD]), metadata=auth, timeout=60
    )
    for event in stream:
        if event.change.record_id == lead.id:
            seen.append(event)
            if len(seen) == 2:
                stream.cancel()
                break
    assert [event.change.operation for event in seen] == [changes_pb2.CHANGE_OPERATION_CREATE, changes_pb2.CHANGE_OPERATION_UPDATE]
    assert seen[0].change.origin == f"py-sync-{run}" and seen[1].change.origin == ""
    with pytest.raises(grpc.RpcError) as bad:
        changes.ListChanges(changes_pb2.ListChangesRequest(cursor="not-a-cursor"), metadata=auth)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "cursor" in bad.value.details()
