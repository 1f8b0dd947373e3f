"""The streaming bulk import through Python grpcio: a bidirectional stream any gRPC stack can drive."""
import uuid

from crm.v1 import common_pb2, duplicates_pb2, imports_pb2, imports_pb2_grpc

COLUMNS = ["Full Name", "E-Mail", "Company", "Tags"]


def rows(tag, start, stop):
    for index in range(start, stop):
        email = "broken" if index == 7 else f"p{index}-{tag}@py-import.example"
        yield imports_pb2.ImportRow(index=index, values=[f"Py Person{index}", email, "Acme, Inc.", "csv;python"])


def requests(import_id, tag, batches):
    yield imports_pb2.ImportRequest(
        header=imports_pb2.ImportHeader(
            record_type=common_pb2.RECORD_TYPE_LEAD,
            import_id=import_id,
            mode=imports_pb2.IMPORT_MODE_INSERT,
            duplicate_action=duplicates_pb2.DUPLICATE_ACTION_BLOCK,
            columns=COLUMNS,
            source_name="python.csv",
        )
    )
    for start, stop in batches:
        yield imports_pb2.ImportRequest(rows=imports_pb2.ImportRowBatch(rows=list(rows(tag, start, stop))))


def test_stream_then_resume(channel, auth):
    imports = imports_pb2_grpc.ImportServiceStub(channel)
    tag = uuid.uuid4().hex[:8]
    import_id = f"py-{tag}"
    answers = list(imports.Import(requests(import_id, tag, [(0, 100), (100, 250)]), metadata=auth))
    assert answers[0].WhichOneof("message") == "started" and answers[0].started.resume_from == 0
    results = [r for a in answers if a.WhichOneof("message") == "results" for r in a.results.results]
    assert [r.index for r in results] == list(range(250))
    failed = [r for r in results if r.outcome == imports_pb2.ImportRowResult.OUTCOME_FAILED]
    assert [r.index for r in failed] == [7] and failed[0].errors[0].column == "E-Mail"
    summary = answers[-1].summary.job
    assert summary.state == imports_pb2.ImportJob.STATE_COMPLETED
    assert (summary.created, summary.failed, summary.next_index) == (249, 1, 250)

    # Resuming: the server says where to continue; rows sent again are answered, not written again.
    again = list(imports.Import(requests(import_id, tag, [(200, 300)]), metadata=auth))
    assert again[0].started.resumed and again[0].started.resume_from == 250
    resent = [r for a in again if a.WhichOneof("message") == "results" for r in a.results.results]
    assert all(r.already_imported for r in resent if r.index < 250)
    assert all(not r.already_imported and r.outcome == imports_pb2.ImportRowResult.OUTCOME_CREATED for r in resent if r.index >= 250)
    job = imports.GetImport(imports_pb2.GetImportRequest(import_id=import_id), metadata=auth)
    assert (job.created, job.processed_rows) == (299, 300)


def test_invoice_lines_across_batches(channel, auth):
    """A billing export, a row per invoice line: an invoice split by a batch boundary is written whole."""
    from crm.v1 import accounts_pb2, accounts_pb2_grpc, billing_pb2, billing_pb2_grpc

    run = uuid.uuid4().hex[:8]
    account = accounts_pb2_grpc.AccountServiceStub(channel).CreateAccount(
        accounts_pb2.CreateAccountRequest(account=accounts_pb2.Account(name=f"Import interop {run}")), metadata=auth
    )
    columns = ["system", "invoice", "version", "account", "number", "currency", "issue_date", "due_date", "state",
               "description", "amount"]
    lines = [
        ["py", f"in_{run}_1", "1", account.id, f"PY-{run}-1", "USD", "2027-03-01", "2027-03-31", "open", "Plan", "90.00"],
        ["py", f"in_{run}_1", "", "", "", "", "", "", "", "Seats", "10.25"],
        ["py", f"in_{run}_2", "1", account.id, f"PY-{run}-2", "USD", "2027-03-02", "2027-04-01", "paid", "Plan", "90.00"],
    ]

    def requests():
        yield imports_pb2.ImportRequest(
            header=imports_pb2.ImportHeader(
                record_type=common_pb2.RECORD_TYPE_INVOICE, import_id=f"py-inv-{run}", columns=columns
            )
        )
        for start, stop in [(0, 1), (1, 3)]:
            batch = [imports_pb2.ImportRow(index=i, values=lines[i]) for i in range(start, stop)]
            yield imports_pb2.ImportRequest(rows=imports_pb2.ImportRowBatch(rows=batch))

    answers = list(imports_pb2_grpc.ImportServiceStub(channel).Import(requests(), metadata=auth))
    results = [r for a in answers if a.WhichOneof("message") == "results" for r in a.results.results]
    assert [r.index for r in results] == [0, 1, 2]
    assert all(r.outcome == imports_pb2.ImportRowResult.OUTCOME_CREATED for r in results)
    assert results[0].record_id == results[1].record_id != results[2].record_id
    invoice = billing_pb2_grpc.BillingServiceStub(channel).GetInvoice(
        billing_pb2.GetInvoiceRequest(id=results[0].record_id), metadata=auth
    )
    assert [line.description for line in invoice.lines] == ["Plan", "Seats"]
    assert (invoice.total.units, invoice.total.nanos) == (100, 250_000_000)
