"""An independent gRPC stack (Python grpcio) against crmd: the API works for any client."""
import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from crm.v1 import accounts_pb2, accounts_pb2_grpc, changes_pb2, changes_pb2_grpc, common_pb2, contacts_pb2, contacts_pb2_grpc


@pytest.fixture
def accounts(channel):
    return accounts_pb2_grpc.AccountServiceStub(channel)


def test_create_get_and_list_with_paging(accounts, auth):
    tag = "interop-" + uuid.uuid4().hex[:8]
    created = [
        accounts.CreateAccount(
            accounts_pb2.CreateAccountRequest(account=accounts_pb2.Account(name=f"Py {tag} {i:02}", tags=[tag])),
            metadata=auth,
        )
        for i in range(7)
    ]
    fetched = accounts.GetAccount(accounts_pb2.GetAccountRequest(id=created[0].id), metadata=auth)
    assert fetched.name == created[0].name
    assert fetched.etag == "1"
    assert fetched.create_time.seconds > 0

    seen, token = [], ""
    while True:
        page = accounts.ListAccounts(
            accounts_pb2.ListAccountsRequest(tag=tag, page_size=3, page_token=token, include_total_size=True),
            metadata=auth,
        )
        assert page.total_size == 7
        seen += [a.name for a in page.accounts]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(a.name for a in created)


def test_request_id_makes_create_idempotent(accounts, auth):
    request = accounts_pb2.CreateAccountRequest(account=accounts_pb2.Account(name="Once"), request_id=str(uuid.uuid4()))
    first = accounts.CreateAccount(request, metadata=auth)
    again = accounts.CreateAccount(request, metadata=auth)
    assert first.id == again.id


def test_update_with_a_stale_etag_is_aborted(accounts, auth):
    account = accounts.CreateAccount(
        accounts_pb2.CreateAccountRequest(account=accounts_pb2.Account(name="Etag Inc")), metadata=auth
    )
    mask = field_mask_pb2.FieldMask(paths=["name"])
    updated = accounts.UpdateAccount(
        accounts_pb2.UpdateAccountRequest(account=accounts_pb2.Account(id=account.id, etag=account.etag, name="Etag 2"), update_mask=mask),
        metadata=auth,
    )
    assert updated.etag != account.etag
    with pytest.raises(grpc.RpcError) as caught:
        accounts.UpdateAccount(
            accounts_pb2.UpdateAccountRequest(account=accounts_pb2.Account(id=account.id, etag=account.etag, name="Etag 3"), update_mask=mask),
            metadata=auth,
        )
    assert caught.value.code() == grpc.StatusCode.ABORTED
    status = rpc_status.from_call(caught.value)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.metadata["current_etag"] == updated.etag


def test_bad_input_names_every_field(accounts, auth):
    with pytest.raises(grpc.RpcError) as caught:
        accounts.CreateAccount(
            accounts_pb2.CreateAccountRequest(
                account=accounts_pb2.Account(name="", website="not a url", billing_address=common_pb2.PostalAddress(region_code="USA"))
            ),
            metadata=auth,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    fields = {v.field for v in bad.field_violations}
    assert fields == {"account.name", "account.website", "account.billing_address.region_code"}


def test_unknown_and_missing_ids(accounts, auth):
    with pytest.raises(grpc.RpcError) as caught:
        accounts.GetAccount(accounts_pb2.GetAccountRequest(id=str(uuid.uuid4())), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        accounts.GetAccount(accounts_pb2.GetAccountRequest(id="x'; DROP TABLE accounts; --"), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_no_token_is_unauthenticated(accounts):
    with pytest.raises(grpc.RpcError) as caught:
        accounts.ListAccounts(accounts_pb2.ListAccountsRequest())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as caught:
        accounts.ListAccounts(accounts_pb2.ListAccountsRequest(), metadata=[("authorization", "Bearer crm_not-a-real-token")])
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_contacts_and_history(channel, accounts, auth):
    contacts = contacts_pb2_grpc.ContactServiceStub(channel)
    changes = changes_pb2_grpc.ChangeServiceStub(channel)
    account = accounts.CreateAccount(accounts_pb2.CreateAccountRequest(account=accounts_pb2.Account(name="Hist")), metadata=auth)
    contact = contacts.CreateContact(
        contacts_pb2.CreateContactRequest(
            contact=contacts_pb2.Contact(
                account_id=account.id, first_name="Grace", last_name="Hopper",
                emails=[contacts_pb2.ContactEmail(address="Grace@Example.COM")],
                phones=[contacts_pb2.ContactPhone(number="(415) 555-0100")],
                address=common_pb2.PostalAddress(region_code="US"),
            )
        ),
        metadata=auth,
    )
    assert contact.emails[0].address == "grace@example.com"
    assert contact.emails[0].primary
    assert contact.phones[0].number == "+14155550100"
    listed = accounts.ListAccountContacts(accounts_pb2.ListAccountContactsRequest(account_id=account.id), metadata=auth)
    assert [c.id for c in listed.contacts] == [contact.id]
    accounts.DeleteAccount(accounts_pb2.DeleteAccountRequest(id=account.id), metadata=auth)
    history = changes.GetRecordHistory(
        changes_pb2.GetRecordHistoryRequest(record_type=common_pb2.RECORD_TYPE_ACCOUNT, record_id=account.id), metadata=auth
    )
    assert [e.operation for e in history.entries] == [changes_pb2.CHANGE_OPERATION_ARCHIVE, changes_pb2.CHANGE_OPERATION_CREATE]
    name_change = [c for c in history.entries[1].changes if c.field == "name"][0]
    assert name_change.new_value.string_value == "Hist"
