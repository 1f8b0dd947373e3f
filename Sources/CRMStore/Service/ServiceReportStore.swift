public import CRMCore
import Foundation
import LibPQ

/// The service desk's numbers over a period.
public struct ServiceReport: Sendable, Hashable {
  /// SLA outcomes of the clocks decided in the period (achieved when met, breached when the breach
  /// happened), broken down one dimension at a time.
  public struct Achievement: Sendable, Hashable {
    /// "all", "policy", "priority", "group" or "agent".
    public var dimension: String
    /// The policy, group or agent id, or the priority; empty for "all".
    public var key: String
    public var metric: SLAMetric
    public var achieved: Int64
    public var breached: Int64
  }

  /// How long something took: over the tickets where it happened in the period.
  public struct Durations: Sendable, Hashable {
    public var count: Int64
    /// Wall-clock time from creation.
    public var medianSeconds: Double?
    public var p90Seconds: Double?
    /// As the SLA clocks counted it (business time where the policy counts business hours, pauses left out).
    public var slaMedianSeconds: Double?
    public var slaP90Seconds: Double?
  }

  /// Open tickets now, by status and age.
  public struct Backlog: Sendable, Hashable {
    public var status: TicketStatus
    /// "<1d", "1-3d", "3-7d", ">7d".
    public var age: String
    public var count: Int64
  }

  /// CSAT over the surveys issued in the period.
  public struct Satisfaction: Sendable, Hashable {
    /// "all", "group" or "agent".
    public var dimension: String
    public var key: String
    public var surveys: Int64
    public var answers: Int64
    public var averageRating: Double?
  }

  public var from: Timestamp
  public var to: Timestamp
  public var achievement: [Achievement]
  public var firstResponse: Durations
  public var resolution: Durations
  public var backlog: [Backlog]
  public var satisfaction: [Satisfaction]
}

extension TicketStore {
  /// The service report for `[from, to)`: SLA achievement per policy, priority, group and agent;
  /// first-response and resolution times (median, p90, wall-clock and as the clocks count); the open
  /// backlog by status and age; CSAT average and response rate by group and agent. Managers and admins.
  public func report(from: Timestamp, to: Timestamp, principal: Principal) async throws -> ServiceReport {
    guard principal.isAdmin || principal.role == .manager else {
      throw CRMError.permissionDenied("the service report is for managers and admins")
    }
    let tenant = principal.tenantID
    let at = now()
    return try await database.read(
      tenant,
      [
        """
        WITH decided AS (
          SELECT i.metric, i.state, t.priority, t.group_id, t.assignee_id,
            (SELECT e.policy_id FROM sla_events e
             WHERE e.tenant_id = i.tenant_id AND e.ticket_id = i.ticket_id AND e.metric = i.metric AND e.instance = i.instance
               AND e.policy_id IS NOT NULL ORDER BY e.sequence DESC LIMIT 1) AS policy_id
          FROM sla_instances i JOIN tickets t ON t.tenant_id = i.tenant_id AND t.id = i.ticket_id
          WHERE i.tenant_id = \(tenant) AND (
            (i.state = 'breached' AND i.breach_at >= \(from) AND i.breach_at < \(to))
            OR (i.state = 'achieved' AND i.ended_at >= \(from) AND i.ended_at < \(to)))
        )
        SELECT metric,
          CASE WHEN GROUPING(policy_id) = 0 THEN 'policy' WHEN GROUPING(priority) = 0 THEN 'priority'
               WHEN GROUPING(group_id) = 0 THEN 'group' WHEN GROUPING(assignee_id) = 0 THEN 'agent' ELSE 'all' END AS dimension,
          coalesce(policy_id::text, priority, group_id::text, assignee_id::text, '') AS key,
          count(*) FILTER (WHERE state = 'achieved') AS achieved, count(*) FILTER (WHERE state = 'breached') AS breached
        FROM decided
        GROUP BY GROUPING SETS ((metric), (metric, policy_id), (metric, priority), (metric, group_id), (metric, assignee_id))
        ORDER BY metric, dimension, key
        """,
        """
        SELECT count(*) AS n,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.first_response_at - t.created_at)) AS median,
          percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM t.first_response_at - t.created_at)) AS p90,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY i.elapsed_seconds) AS sla_median,
          percentile_cont(0.9) WITHIN GROUP (ORDER BY i.elapsed_seconds) AS sla_p90
        FROM tickets t
        LEFT JOIN sla_instances i ON i.tenant_id = t.tenant_id AND i.ticket_id = t.id AND i.metric = 'first_reply'
          AND i.instance = 1 AND i.ended_at IS NOT NULL
        WHERE t.tenant_id = \(tenant) AND t.first_response_at >= \(from) AND t.first_response_at < \(to)
        """,
        """
        SELECT count(*) AS n,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.solved_at - t.created_at)) AS median,
          percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM t.solved_at - t.created_at)) AS p90,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY r.elapsed) AS sla_median,
          percentile_cont(0.9) WITHIN GROUP (ORDER BY r.elapsed) AS sla_p90
        FROM tickets t
        LEFT JOIN LATERAL (
          SELECT sum(elapsed_seconds) AS elapsed FROM sla_instances i
          WHERE i.tenant_id = t.tenant_id AND i.ticket_id = t.id AND i.metric = 'resolution'
        ) r ON true
        WHERE t.tenant_id = \(tenant) AND t.solved_at >= \(from) AND t.solved_at < \(to) AND t.merged_into_id IS NULL
        """,
        """
        SELECT status,
          CASE WHEN age < interval '1 day' THEN '<1d' WHEN age < interval '3 days' THEN '1-3d'
               WHEN age < interval '7 days' THEN '3-7d' ELSE '>7d' END AS bucket,
          count(*) AS n
        FROM (SELECT status, \(at)::timestamptz - created_at AS age FROM tickets
              WHERE tenant_id = \(tenant) AND status IN ('new', 'open', 'pending', 'on_hold') AND archived_at IS NULL) open
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        """
        SELECT CASE WHEN GROUPING(group_id) = 0 THEN 'group' WHEN GROUPING(agent) = 0 THEN 'agent' ELSE 'all' END AS dimension,
          coalesce(group_id::text, agent::text, '') AS key, count(*) AS surveys,
          count(satisfaction_rating) AS answers, avg(satisfaction_rating)::float8 AS average
        FROM (SELECT group_id, coalesce(satisfaction_by_assignee_id, assignee_id) AS agent, satisfaction_rating FROM tickets
              WHERE tenant_id = \(tenant) AND satisfaction_issued_at >= \(from) AND satisfaction_issued_at < \(to)) surveyed
        GROUP BY GROUPING SETS ((), (group_id), (agent))
        ORDER BY 1, 2
        """,
      ]
    ) { results in
      let achievement = try results[0].rows.compactMap { row -> ServiceReport.Achievement? in
        guard let metric = SLAMetric(rawValue: try row.decode("metric")) else { return nil }
        return ServiceReport.Achievement(
          dimension: try row.decode("dimension"), key: try row.decode("key"), metric: metric,
          achieved: try row.decode("achieved"), breached: try row.decode("breached"))
      }
      func durations(_ row: PostgresRow) throws -> ServiceReport.Durations {
        ServiceReport.Durations(
          count: try row.decode("n"), medianSeconds: try row.decode("median"), p90Seconds: try row.decode("p90"),
          slaMedianSeconds: try row.decode("sla_median"), slaP90Seconds: try row.decode("sla_p90"))
      }
      let backlog = try results[3].rows.compactMap { row -> ServiceReport.Backlog? in
        guard let status = TicketStatus(rawValue: try row.decode("status")) else { return nil }
        return ServiceReport.Backlog(status: status, age: try row.decode("bucket"), count: try row.decode("n"))
      }
      let satisfaction = try results[4].rows.map { row in
        ServiceReport.Satisfaction(
          dimension: try row.decode("dimension"), key: try row.decode("key"), surveys: try row.decode("surveys"),
          answers: try row.decode("answers"), averageRating: try row.decode("average"))
      }
      return ServiceReport(
        from: from, to: to, achievement: achievement, firstResponse: try durations(results[1][0]),
        resolution: try durations(results[2][0]), backlog: backlog, satisfaction: satisfaction)
    }
  }
}
