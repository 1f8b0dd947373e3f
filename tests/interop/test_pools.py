"""Shared pools through Python grpcio: concurrent claims from two reps, release with a reason."""
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from crm.v1 import admin_pb2, admin_pb2_grpc, common_pb2, leads_pb2, leads_pb2_grpc, pools_pb2, pools_pb2_grpc


def rep(channel, auth, run, name):
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    user = admin.CreateUser(
        admin_pb2.CreateUserRequest(email=f"{name}-{run}@pool.example", display_name=name, role=admin_pb2.ROLE_SALES_REP),
        metadata=auth,
    )
    token = admin.CreateToken(admin_pb2.CreateTokenRequest(user_id=user.id, name="interop"), metadata=auth)
    return user, [("authorization", "Bearer " + token.secret)]


def test_claim_race_and_release(channel, auth):
    pools = pools_pb2_grpc.PoolServiceStub(channel)
    leads = leads_pb2_grpc.LeadServiceStub(channel)
    run = uuid.uuid4().hex[:8]
    alice, alice_auth = rep(channel, auth, run, "alice")
    bob, bob_auth = rep(channel, auth, run, "bob")
    pool = pools.CreatePool(
        pools_pb2.CreatePoolRequest(
            pool=pools_pb2.Pool(name=f"Open sea {run}", record_type=common_pb2.RECORD_TYPE_LEAD, reclaim_cooldown_days=3)
        ),
        metadata=auth,
    )
    pools.SetPoolMembers(
        pools_pb2.SetPoolMembersRequest(
            pool_id=pool.id, members=[pools_pb2.PoolMember(user_id=alice.id), pools_pb2.PoolMember(user_id=bob.id)]
        ),
        metadata=auth,
    )
    lead = leads.CreateLead(leads_pb2.CreateLeadRequest(lead=leads_pb2.Lead(company=f"Pooled {run}")), metadata=auth)
    ref = common_pb2.RecordRef(record_type=common_pb2.RECORD_TYPE_LEAD, record_id=lead.id)
    moved = pools.MoveToPool(pools_pb2.MoveToPoolRequest(record=ref, pool_id=pool.id, reason_code="seeded"), metadata=auth)
    assert moved.lead.pool_id == pool.id and moved.lead.owner_id == ""

    def claim(metadata):
        try:
            return pools.Claim(pools_pb2.ClaimRequest(record=ref), metadata=metadata).lead.owner_id
        except grpc.RpcError as error:
            return error.code()

    with ThreadPoolExecutor(max_workers=8) as executor:
        results = list(executor.map(claim, [alice_auth, bob_auth] * 4))
    winners = [r for r in results if isinstance(r, str)]
    assert len(winners) == 1
    assert results.count(grpc.StatusCode.FAILED_PRECONDITION) == 7
    holder_auth = alice_auth if winners[0] == alice.id else bob_auth

    with pytest.raises(grpc.RpcError) as caught:
        pools.Release(pools_pb2.ReleaseRequest(record=ref), metadata=holder_auth)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    released = pools.Release(
        pools_pb2.ReleaseRequest(record=ref, reason_code="no_budget", note="Next fiscal year"), metadata=holder_auth
    )
    assert released.lead.pool_id == pool.id
    # The releaser waits out the cooldown; the other rep may claim at once.
    with pytest.raises(grpc.RpcError) as caught:
        pools.Claim(pools_pb2.ClaimRequest(record=ref), metadata=holder_auth)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    other_auth = bob_auth if holder_auth is alice_auth else alice_auth
    assert pools.Claim(pools_pb2.ClaimRequest(record=ref), metadata=other_auth).lead.owner_id != ""
