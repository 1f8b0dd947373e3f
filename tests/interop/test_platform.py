"""Health and reflection through the standard Python clients."""
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


def test_health_is_serving_without_a_token(channel):
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    reply = health.Check(health_pb2.HealthCheckRequest(service="crm.v1.AccountService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


class _AuthenticatedChannel:
    """Adds the token to the reflection stream, which crmd protects like every other service."""

    def __init__(self, channel, auth):
        self._channel, self._auth = channel, auth

    def stream_stream(self, method, request_serializer=None, response_deserializer=None, **kwargs):
        call = self._channel.stream_stream(method, request_serializer=request_serializer, response_deserializer=response_deserializer, **kwargs)
        return lambda requests, **kw: call(requests, metadata=self._auth, **kw)


def test_reflection_describes_the_api(channel, auth):
    database = ProtoReflectionDescriptorDatabase(_AuthenticatedChannel(channel, auth))
    services = set(database.get_services())
    assert {"crm.v1.AccountService", "crm.v1.ContactService", "crm.v1.AdminService", "grpc.health.v1.Health"} <= services
    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName("crm.v1.AccountService")
    assert "UpdateAccount" in [m.name for m in service.methods]
    account = pool.FindMessageTypeByName("crm.v1.Account")
    assert account.fields_by_name["annual_revenue"].message_type.full_name == "crm.v1.Money"
