"""The customer 360 through Python grpcio: one call, every section, each saying whether it is shown."""
import uuid

from crm.v1 import accounts_pb2, accounts_pb2_grpc, contacts_pb2, contacts_pb2_grpc, insight_pb2, insight_pb2_grpc
from crm.v1 import tickets_pb2, tickets_pb2_grpc


def test_customer_360(channel, auth):
    run = uuid.uuid4().hex[:8]
    account = accounts_pb2_grpc.AccountServiceStub(channel).CreateAccount(
        accounts_pb2.CreateAccountRequest(account=accounts_pb2.Account(name=f"360 interop {run}")), metadata=auth
    )
    contact = contacts_pb2_grpc.ContactServiceStub(channel).CreateContact(
        contacts_pb2.CreateContactRequest(
            contact=contacts_pb2.Contact(first_name="Ada", last_name=f"Py{run}", account_id=account.id)
        ),
        metadata=auth,
    )
    tickets_pb2_grpc.TicketServiceStub(channel).CreateTicket(
        tickets_pb2.CreateTicketRequest(
            ticket=tickets_pb2.Ticket(subject="Printer on fire", requester_contact_id=contact.id)
        ),
        metadata=auth,
    )
    insight = insight_pb2_grpc.InsightServiceStub(channel)
    view = insight.GetCustomer360(insight_pb2.GetCustomer360Request(account_id=account.id, section_size=3), metadata=auth)
    assert view.account.id == account.id
    assert view.contacts.section.available and [c.id for c in view.contacts.contacts] == [contact.id]
    assert view.service.open_count == 1 and view.service.open_tickets[0].subject == "Printer on fire"
    assert view.financials.section.available and view.pipeline.open_count == 0
    by_contact = insight.GetCustomer360(insight_pb2.GetCustomer360Request(contact_id=contact.id), metadata=auth)
    assert by_contact.contact.id == contact.id and by_contact.account.id == account.id
