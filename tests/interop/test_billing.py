"""The billing link through Python grpcio: push an invoice, pay part of it, dispute a line, read the statement."""
import uuid

import grpc
import pytest

from crm.v1 import accounts_pb2, accounts_pb2_grpc, billing_pb2, billing_pb2_grpc, common_pb2


def usd(units, nanos=0):
    return common_pb2.Money(currency_code="USD", units=units, nanos=nanos)


def test_invoice_then_partial_payment(channel, auth):
    run = uuid.uuid4().hex[:8]
    billing = billing_pb2_grpc.BillingServiceStub(channel)
    account = accounts_pb2_grpc.AccountServiceStub(channel).CreateAccount(
        accounts_pb2.CreateAccountRequest(account=accounts_pb2.Account(name=f"Billing interop {run}")), metadata=auth
    )
    invoice = billing_pb2.Invoice(
        source=billing_pb2.BillingSource(system="interop", external_id=f"in_{run}", version=1),
        account=billing_pb2.BillingAccountRef(account_id=account.id, customer_external_id=f"cus_{run}"),
        number=f"INV-{run}",
        currency_code="USD",
        issue_date=common_pb2.Date(year=2027, month=1, day=5),
        due_date=common_pb2.Date(year=2027, month=2, day=4),
        vendor_status="payment_due",
        state=billing_pb2.INVOICE_STATE_OPEN,
        total=usd(1200, 500_000_000),
        lines=[
            billing_pb2.InvoiceLine(description="Pro plan", quantity="10", unit_price=usd(100), amount=usd(1000)),
            billing_pb2.InvoiceLine(
                kind=billing_pb2.INVOICE_LINE_KIND_USAGE, metric="api_calls", quantity="2000000", amount=usd(200, 500_000_000)
            ),
        ],
    )
    created = billing.UpsertInvoice(billing_pb2.UpsertInvoiceRequest(invoice=invoice), metadata=auth)
    assert created.outcome == billing_pb2.UPSERT_OUTCOME_CREATED
    assert [line.line_number for line in created.invoice.lines] == [1, 2]
    # The same event again (a webhook retried): nothing changes.
    again = billing.UpsertInvoice(billing_pb2.UpsertInvoiceRequest(invoice=invoice), metadata=auth)
    assert again.outcome == billing_pb2.UPSERT_OUTCOME_UNCHANGED and again.invoice.etag == created.invoice.etag

    # 500.25 of it paid, by the customer's billing id alone.
    payment = billing_pb2.Payment(
        source=billing_pb2.BillingSource(system="interop", external_id=f"py_{run}", version=1),
        account=billing_pb2.BillingAccountRef(customer_external_id=f"cus_{run}"),
        amount=usd(500, 250_000_000),
        received_date=common_pb2.Date(year=2027, month=1, day=20),
        method="bank_transfer",
        allocations=[billing_pb2.Allocation(invoice_external_id=f"in_{run}", amount=usd(500, 250_000_000))],
    )
    paid = billing.UpsertPayment(billing_pb2.UpsertPaymentRequest(payment=payment), metadata=auth)
    assert paid.outcome == billing_pb2.UPSERT_OUTCOME_CREATED
    assert paid.payment.account.account_id == account.id and paid.payment.unallocated == usd(0)

    read = billing.GetInvoice(
        billing_pb2.GetInvoiceRequest(source_system="interop", external_id=f"in_{run}"), metadata=auth
    )
    assert read.amount_paid == usd(500, 250_000_000)
    assert read.balance == usd(700, 250_000_000)

    # Paying more than it owes is refused, and names the invoice.
    with pytest.raises(grpc.RpcError) as refused:
        billing.UpsertPayment(
            billing_pb2.UpsertPaymentRequest(
                payment=billing_pb2.Payment(
                    source=billing_pb2.BillingSource(system="interop", external_id=f"py2_{run}", version=1),
                    account=billing_pb2.BillingAccountRef(account_id=account.id),
                    amount=usd(800),
                    received_date=common_pb2.Date(year=2027, month=1, day=21),
                    allocations=[billing_pb2.Allocation(invoice_id=read.id, amount=usd(800))],
                )
            ),
            metadata=auth,
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"INV-{run}" in refused.value.details()

    listed = billing.ListInvoices(billing_pb2.ListInvoicesRequest(account_id=account.id), metadata=auth)
    assert [i.number for i in listed.invoices] == [f"INV-{run}"]

    # The customer disputes the usage line: a dispute ticket; the line's amount leaves what is overdue.
    opened = billing.OpenDispute(
        billing_pb2.OpenDisputeRequest(
            source_system="interop", external_id=f"in_{run}", line_numbers=[2], reason="product_unacceptable"
        ),
        metadata=auth,
    )
    assert opened.dispute.amount == usd(200, 500_000_000)
    assert opened.dispute.state == billing_pb2.DISPUTE_STATE_NEEDS_RESPONSE and opened.ticket_number > 0
    disputed = billing.GetInvoice(billing_pb2.GetInvoiceRequest(id=read.id), metadata=auth)
    assert disputed.amount_disputed == usd(200, 500_000_000)

    # Lost: a credit note of 200.50; the statement shows the invoice, the payment and the credit.
    lost = billing.MoveDispute(
        billing_pb2.MoveDisputeRequest(id=opened.dispute.id, state=billing_pb2.DISPUTE_STATE_LOST), metadata=auth
    )
    assert lost.credit_note_id
    statement = billing.GetAccountStatement(
        billing_pb2.GetAccountStatementRequest(
            account_id=account.id,
            **{"from": common_pb2.Date(year=2026, month=1, day=1)},
            to=common_pb2.Date(year=2030, month=12, day=31),
        ),
        metadata=auth,
    )
    # (The credit note is dated the day the dispute was lost, the invoice and payment in 2027.)
    assert sorted(line.kind for line in statement.lines) == sorted(
        [
            billing_pb2.STATEMENT_ENTRY_KIND_INVOICE,
            billing_pb2.STATEMENT_ENTRY_KIND_PAYMENT,
            billing_pb2.STATEMENT_ENTRY_KIND_CREDIT_NOTE,
        ]
    )
    assert statement.lines[-1].balance == usd(499, 750_000_000)
    assert [t.closing_balance for t in statement.totals] == [usd(499, 750_000_000)]


def test_collections_promise_and_write_off(channel, auth):
    """Collections through grpcio: the judged status, a promise to pay, a stale etag, a write-off."""
    import datetime

    from crm.v1 import collections_pb2, collections_pb2_grpc

    run = uuid.uuid4().hex[:8]
    billing = billing_pb2_grpc.BillingServiceStub(channel)
    collections = collections_pb2_grpc.CollectionServiceStub(channel)
    account = accounts_pb2_grpc.AccountServiceStub(channel).CreateAccount(
        accounts_pb2.CreateAccountRequest(account=accounts_pb2.Account(name=f"Collections interop {run}")), metadata=auth
    )
    today = datetime.date.today()
    due = today - datetime.timedelta(days=40)
    issued = due - datetime.timedelta(days=30)
    invoice = billing.UpsertInvoice(
        billing_pb2.UpsertInvoiceRequest(
            invoice=billing_pb2.Invoice(
                source=billing_pb2.BillingSource(system="interop", external_id=f"late_{run}", version=1),
                account=billing_pb2.BillingAccountRef(account_id=account.id),
                number=f"LATE-{run}",
                currency_code="USD",
                issue_date=common_pb2.Date(year=issued.year, month=issued.month, day=issued.day),
                due_date=common_pb2.Date(year=due.year, month=due.month, day=due.day),
                vendor_status="past_due",
                state=billing_pb2.INVOICE_STATE_OPEN,
                total=usd(800),
                lines=[billing_pb2.InvoiceLine(description="Annual plan", amount=usd(800))],
            )
        ),
        metadata=auth,
    ).invoice
    collection = collections.GetCollection(collections_pb2.GetCollectionRequest(account_id=account.id), metadata=auth)
    assert collection.status == billing_pb2.COLLECTION_STATUS_NEEDS_ACTION
    assert list(collection.overdue) == [usd(800)]

    # A promise in the past is refused; one next week pauses dunning.
    past = today - datetime.timedelta(days=1)
    with pytest.raises(grpc.RpcError) as refused:
        collections.PromiseToPay(
            collections_pb2.PromiseToPayRequest(
                account_id=account.id, amount=usd(300), pay_by_date=common_pb2.Date(year=past.year, month=past.month, day=past.day)
            ),
            metadata=auth,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    week = today + datetime.timedelta(days=7)
    promised = collections.PromiseToPay(
        collections_pb2.PromiseToPayRequest(
            account_id=account.id,
            amount=usd(300),
            pay_by_date=common_pb2.Date(year=week.year, month=week.month, day=week.day),
            note="Treasurer on the phone",
        ),
        metadata=auth,
    )
    assert promised.status == billing_pb2.COLLECTION_STATUS_PROMISE_TO_PAY
    assert promised.promise.state == collections_pb2.PROMISE_STATE_OPEN

    # An escalation with the etag from before the promise: ABORTED.
    stale = collections_pb2.UpdateCollectionRequest(
        collection=collections_pb2.AccountCollection(
            account_id=account.id, escalation=billing_pb2.COLLECTION_STATUS_IN_COLLECTIONS, etag=collection.etag
        )
    )
    stale.update_mask.paths.append("escalation")
    with pytest.raises(grpc.RpcError) as aborted:
        collections.UpdateCollection(stale, metadata=auth)
    assert aborted.value.code() == grpc.StatusCode.ABORTED

    written = collections.WriteOff(
        collections_pb2.WriteOffRequest(account_id=account.id, invoice_ids=[invoice.id], note="settled out of court"),
        metadata=auth,
    )
    assert [(note.amount, note.reason) for note in written.credit_notes] == [(usd(800), "write_off")]
    assert written.collection.status == billing_pb2.COLLECTION_STATUS_WRITTEN_OFF
