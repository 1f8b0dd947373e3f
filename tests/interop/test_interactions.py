"""Duplicate rules, interactions and timelines through Python grpcio."""
import uuid

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from crm.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    common_pb2,
    contacts_pb2,
    contacts_pb2_grpc,
    duplicates_pb2,
    duplicates_pb2_grpc,
    interactions_pb2,
    interactions_pb2_grpc,
)


def ref(record_type, record_id):
    return common_pb2.RecordRef(record_type=record_type, record_id=record_id)


def set_contact_rule(rules, auth, action, keys=()):
    rules.SetDuplicateRule(
        duplicates_pb2.SetDuplicateRuleRequest(
            rule=duplicates_pb2.DuplicateRule(record_type=common_pb2.RECORD_TYPE_CONTACT, action=action, match_keys=keys)
        ),
        metadata=auth,
    )


def test_blocking_rule_details_and_override(channel, auth):
    contacts = contacts_pb2_grpc.ContactServiceStub(channel)
    rules = duplicates_pb2_grpc.DuplicateServiceStub(channel)
    set_contact_rule(rules, auth, duplicates_pb2.DUPLICATE_ACTION_WARN)
    email = f"twin-{uuid.uuid4().hex[:8]}@py.example"
    request = contacts_pb2.CreateContactRequest(
        contact=contacts_pb2.Contact(last_name="Twin", emails=[contacts_pb2.ContactEmail(address=email)])
    )
    first = contacts.CreateContact(request, metadata=auth)
    # The standard rule warns: the second create succeeds and says what it looks like.
    warned = contacts.CreateContact(request, metadata=auth)
    assert warned.duplicate_findings.action == duplicates_pb2.DUPLICATE_ACTION_WARN
    assert first.id in [m.record_id for m in warned.duplicate_findings.matches]

    set_contact_rule(rules, auth, duplicates_pb2.DUPLICATE_ACTION_BLOCK, ["email"])
    try:
        with pytest.raises(grpc.RpcError) as caught:
            contacts.CreateContact(request, metadata=auth)
        assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
        status = rpc_status.from_call(caught.value)
        infos, findings = [], []
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                infos.append(info)
            if detail.Is(duplicates_pb2.DuplicateFindings.DESCRIPTOR):
                found = duplicates_pb2.DuplicateFindings()
                detail.Unpack(found)
                findings.append(found)
        assert infos and infos[0].reason == "DUPLICATE"
        assert findings and {first.id, warned.id} <= {m.record_id for m in findings[0].matches}
        forced = contacts.CreateContact(
            contacts_pb2.CreateContactRequest(contact=request.contact, duplicate_action=duplicates_pb2.DUPLICATE_ACTION_ALLOW),
            metadata=auth,
        )
        assert forced.id not in (first.id, warned.id)
    finally:
        set_contact_rule(rules, auth, duplicates_pb2.DUPLICATE_ACTION_WARN)


def test_interactions_and_timeline(channel, auth):
    accounts = accounts_pb2_grpc.AccountServiceStub(channel)
    contacts = contacts_pb2_grpc.ContactServiceStub(channel)
    interactions = interactions_pb2_grpc.InteractionServiceStub(channel)
    account = accounts.CreateAccount(
        accounts_pb2.CreateAccountRequest(account=accounts_pb2.Account(name=f"Timeline {uuid.uuid4().hex[:6]}")), metadata=auth
    )
    contact = contacts.CreateContact(
        contacts_pb2.CreateContactRequest(contact=contacts_pb2.Contact(last_name="Buyer", account_id=account.id)), metadata=auth
    )
    start = timestamp_pb2.Timestamp()
    start.GetCurrentTime()
    start.seconds -= 3600
    visit = interactions.LogInteraction(
        interactions_pb2.LogInteractionRequest(
            interaction=interactions_pb2.Interaction(
                kind=interactions_pb2.INTERACTION_KIND_VISIT,
                subject="Site visit",
                start_time=start,
                visit=interactions_pb2.Visit(check_in_time=start, latitude=31.2304, longitude=121.4737),
                links=[ref(common_pb2.RECORD_TYPE_CONTACT, contact.id)],
            )
        ),
        metadata=auth,
    )
    assert abs(visit.visit.latitude - 31.2304) < 1e-9
    assert accounts.GetAccount(accounts_pb2.GetAccountRequest(id=account.id), metadata=auth).id == account.id
    assert (
        contacts.GetContact(contacts_pb2.GetContactRequest(id=contact.id), metadata=auth).last_activity_time.seconds
        == start.seconds
    )

    timeline = interactions.GetTimeline(
        interactions_pb2.GetTimelineRequest(record=ref(common_pb2.RECORD_TYPE_ACCOUNT, account.id)), metadata=auth
    )
    types = [entry.type for entry in timeline.entries]
    assert types == [interactions_pb2.TIMELINE_ENTRY_TYPE_CREATED, interactions_pb2.TIMELINE_ENTRY_TYPE_INTERACTION]
    assert timeline.entries[1].interaction.id == visit.id
    assert timeline.entries[1].record.record_id == contact.id

    with pytest.raises(grpc.RpcError) as caught:
        interactions.LogInteraction(
            interactions_pb2.LogInteractionRequest(interaction=interactions_pb2.Interaction(kind=interactions_pb2.INTERACTION_KIND_NOTE)),
            metadata=auth,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "interaction.links" in caught.value.details()
