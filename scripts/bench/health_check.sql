-- pgbench script: the SQL crmd runs for one grpc.health.v1.Health/Check — a bare `SELECT 1`. The
-- crmd figure for it is the floor of the gRPC stack plus one hop to the libpq threads.
SELECT 1;
