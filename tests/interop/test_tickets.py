"""Tickets and SLA clocks through Python grpcio: create, reply, pending, customer reply, solve, CSAT."""
import uuid

import grpc
import pytest

from crm.v1 import contacts_pb2, contacts_pb2_grpc, sla_pb2, sla_pb2_grpc, tickets_pb2, tickets_pb2_grpc


def test_ticket_conversation_with_sla(channel, auth):
    run = uuid.uuid4().hex[:8]
    sla = sla_pb2_grpc.SLAServiceStub(channel)
    tickets = tickets_pb2_grpc.TicketServiceStub(channel)
    contacts = contacts_pb2_grpc.ContactServiceStub(channel)
    policy = sla.CreateSLAPolicy(
        sla_pb2.CreateSLAPolicyRequest(
            policy=sla_pb2.SLAPolicy(
                name=f"Interop {run}",
                position=0,
                conditions=sla_pb2.SLAConditions(tags=[f"interop-{run}"]),
                targets=[
                    sla_pb2.SLAPriorityTargets(
                        priority=tickets_pb2.TICKET_PRIORITY_HIGH,
                        first_reply=tickets_pb2.SLATarget(minutes=60, warning_minutes=10),
                        next_reply=tickets_pb2.SLATarget(minutes=120),
                        resolution=tickets_pb2.SLATarget(minutes=1440),
                    )
                ],
            )
        ),
        metadata=auth,
    )
    contact = contacts.CreateContact(
        contacts_pb2.CreateContactRequest(contact=contacts_pb2.Contact(first_name="Grace", last_name=f"Hopper {run}")),
        metadata=auth,
    )
    ticket = tickets.CreateTicket(
        tickets_pb2.CreateTicketRequest(
            ticket=tickets_pb2.Ticket(
                subject="The compiler found a moth",
                description="Relay 70, panel F.",
                priority=tickets_pb2.TICKET_PRIORITY_HIGH,
                channel=tickets_pb2.TICKET_CHANNEL_WEB_FORM,
                requester_contact_id=contact.id,
                tags=[f"interop-{run}"],
            ),
            request_id=f"ticket-{run}",
        ),
        metadata=auth,
    )
    assert ticket.status == tickets_pb2.TICKET_STATUS_NEW
    assert ticket.sla_policy_id == policy.id and ticket.sla_state == tickets_pb2.TICKET_SLA_STATE_ACTIVE
    assert ticket.HasField("next_breach_time")

    reply = tickets.AddComment(
        tickets_pb2.AddCommentRequest(ticket_id=ticket.id, public=True, body="Taped into the log book."), metadata=auth
    )
    assert reply.ticket.status == tickets_pb2.TICKET_STATUS_OPEN and reply.ticket.HasField("first_response_time")
    pending = tickets.UpdateTicket(
        tickets_pb2.UpdateTicketRequest(
            ticket=tickets_pb2.Ticket(id=ticket.id, etag=reply.ticket.etag, status=tickets_pb2.TICKET_STATUS_PENDING),
            update_mask={"paths": ["status"]},
        ),
        metadata=auth,
    )
    assert pending.sla_state == tickets_pb2.TICKET_SLA_STATE_PAUSED
    back = tickets.AddComment(
        tickets_pb2.AddCommentRequest(
            ticket_id=ticket.id, author_kind=tickets_pb2.COMMENT_AUTHOR_KIND_CUSTOMER, body="It happened again.",
            message_id=f"<{run}@example.org>",
        ),
        metadata=auth,
    )
    assert back.ticket.status == tickets_pb2.TICKET_STATUS_OPEN and back.comment.author_contact_id == contact.id
    solved = tickets.UpdateTicket(
        tickets_pb2.UpdateTicketRequest(
            ticket=tickets_pb2.Ticket(id=ticket.id, status=tickets_pb2.TICKET_STATUS_SOLVED),
            update_mask={"paths": ["status"]},
        ),
        metadata=auth,
    )
    assert solved.status == tickets_pb2.TICKET_STATUS_SOLVED and solved.HasField("solved_time")

    # CSAT: the customer answers the survey without signing in; the token is the credential.
    surveys = tickets_pb2_grpc.SatisfactionServiceStub(channel)
    assert solved.satisfaction_token.startswith("csat_")
    answer = surveys.SubmitSatisfaction(
        tickets_pb2.SubmitSatisfactionRequest(token=solved.satisfaction_token, rating=5, comment="Bug removed.")
    )
    assert answer.rating == 5
    with pytest.raises(grpc.RpcError) as caught:
        surveys.SubmitSatisfaction(tickets_pb2.SubmitSatisfactionRequest(token=solved.satisfaction_token, rating=1))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    rated = tickets.GetTicket(tickets_pb2.GetTicketRequest(id=f"#{solved.number}"), metadata=auth)
    assert rated.satisfaction_rating == 5 and rated.satisfaction_comment == "Bug removed."

    clocks = tickets.GetTicketSLA(tickets_pb2.GetTicketSLARequest(ticket_id=ticket.id), metadata=auth).instances
    states = {(c.metric, c.instance): c.state for c in clocks}
    assert states[(tickets_pb2.SLA_METRIC_FIRST_REPLY, 1)] == tickets_pb2.SLA_INSTANCE_STATE_ACHIEVED
    assert states[(tickets_pb2.SLA_METRIC_NEXT_REPLY, 1)] == tickets_pb2.SLA_INSTANCE_STATE_ACHIEVED
    assert states[(tickets_pb2.SLA_METRIC_RESOLUTION, 1)] == tickets_pb2.SLA_INSTANCE_STATE_ACHIEVED
    resolution = next(c for c in clocks if c.metric == tickets_pb2.SLA_METRIC_RESOLUTION)
    assert [e.kind for e in resolution.entries][:2] == [
        tickets_pb2.SLAClockEntry.KIND_ACTIVATED,
        tickets_pb2.SLAClockEntry.KIND_PAUSED,
    ]
    comments = tickets.ListComments(tickets_pb2.ListCommentsRequest(ticket_id=ticket.id), metadata=auth).comments
    assert [c.author_kind for c in comments] == [
        tickets_pb2.COMMENT_AUTHOR_KIND_CUSTOMER,
        tickets_pb2.COMMENT_AUTHOR_KIND_AGENT,
        tickets_pb2.COMMENT_AUTHOR_KIND_CUSTOMER,
    ]

    with pytest.raises(grpc.RpcError) as caught:
        tickets.UpdateTicket(
            tickets_pb2.UpdateTicketRequest(
                ticket=tickets_pb2.Ticket(id=ticket.id, status=tickets_pb2.TICKET_STATUS_NEW),
                update_mask={"paths": ["status"]},
            ),
            metadata=auth,
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as caught:
        tickets.CreateTicket(tickets_pb2.CreateTicketRequest(ticket=tickets_pb2.Ticket(subject="")), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "ticket.subject" in caught.value.details()
