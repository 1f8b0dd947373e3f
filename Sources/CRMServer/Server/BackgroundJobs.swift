public import CRMCore
public import CRMStore
public import Logging
public import ServiceLifecycle

/// crmd's periodic jobs: the shared pools' recycling, the alerts (stale deals, holdings about to
/// return) raised as tasks, the SLA clocks' warnings and breaches, closing solved tickets, and
/// collections (dunning levels, promises to pay falling due), the weekly forecast snapshots, and
/// lead scoring (weekly training, rescoring changed leads and a rolling sweep).
/// Every node may run them: each pass takes
/// per-pool advisory locks that other nodes skip and row locks with `SKIP LOCKED`, so two nodes never
/// return the same record twice. A failed pass is logged and retried at the next interval.
public final class BackgroundJobs: Service {
  let pools: PoolStore
  let tasks: TaskStore
  let tickets: TicketStore
  let escalations: EscalationStore
  let billing: BillingStore
  let forecasts: ForecastStore
  let scoring: ScoringStore
  let interval: Duration
  let logger: Logger

  /// Jobs over `database`, every `interval`; `slaClock` is the wall clock SLA timers go by.
  public init(
    database: Database, interval: Duration, logger: Logger, slaClock: @escaping @Sendable () -> Timestamp = { .now }
  ) {
    pools = PoolStore(database: database)
    tasks = TaskStore(database: database)
    tickets = TicketStore(database: database, now: slaClock)
    escalations = EscalationStore(database: database, now: slaClock)
    billing = BillingStore(database: database, now: slaClock)
    forecasts = ForecastStore(database: database, now: slaClock)
    scoring = ScoringStore(database: database, now: slaClock)
    self.interval = interval
    self.logger = logger
  }

  /// Runs passes until graceful shutdown.
  public func run() async throws {
    while !Task.isCancelled && !Task.isShuttingDownGracefully {
      await runOnce()
      try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
    }
  }

  /// One pass of every job.
  public func runOnce() async {
    let started = ContinuousClock.now
    do {
      let report = try await pools.recycle()
      if report.returned > 0 {
        logger.info(
          "pool recycling returned records",
          metadata: [
            "crm.job": "pool-recycling", "crm.pools": "\(report.pools)", "crm.returned": "\(report.returned)",
            "crm.duration": "\(ContinuousClock.now - started)",
          ])
      }
    } catch {
      logger.warning(
        "pool recycling failed; retrying next interval", metadata: ["crm.job": "pool-recycling", "error": "\(error)"])
    }
    do {
      let report = try await tasks.raiseAlerts()
      if report.staleDeals + report.expiringHoldings > 0 {
        logger.info(
          "alerts raised as tasks",
          metadata: [
            "crm.job": "alerts", "crm.stale_deals": "\(report.staleDeals)", "crm.expiring_holdings": "\(report.expiringHoldings)",
          ])
      }
    } catch {
      logger.warning("alerts failed; retrying next interval", metadata: ["crm.job": "alerts", "error": "\(error)"])
    }
    do {
      let slaStarted = ContinuousClock.now
      let report = try await tickets.fireDueClocks()
      if report.warned + report.breached > 0 {
        logger.info(
          "SLA warnings and breaches fired",
          metadata: [
            "crm.job": "sla", "crm.warned": "\(report.warned)", "crm.breached": "\(report.breached)",
            "crm.duration": "\(ContinuousClock.now - slaStarted)",
          ])
      }
    } catch {
      logger.warning("SLA job failed; retrying next interval", metadata: ["crm.job": "sla", "error": "\(error)"])
    }
    do {
      let fired = try await escalations.run()
      if fired > 0 { logger.info("escalation rules fired", metadata: ["crm.job": "escalation", "crm.fired": "\(fired)"]) }
    } catch {
      logger.warning("escalations failed; retrying next interval", metadata: ["crm.job": "escalation", "error": "\(error)"])
    }
    do {
      let closed = try await tickets.closeSolved()
      if closed > 0 {
        logger.info("solved tickets closed", metadata: ["crm.job": "auto-close", "crm.closed": "\(closed)"])
      }
    } catch {
      logger.warning("auto-close failed; retrying next interval", metadata: ["crm.job": "auto-close", "error": "\(error)"])
    }
    do {
      let collectionsStarted = ContinuousClock.now
      let report = try await billing.runCollections()
      if report != CollectionJobReport() {
        logger.info(
          "collections: dunning applied, promises settled",
          metadata: [
            "crm.job": "collections", "crm.applied": "\(report.applied)", "crm.tasks": "\(report.tasks)",
            "crm.promises_kept": "\(report.promisesKept)", "crm.promises_broken": "\(report.promisesBroken)",
            "crm.cleared": "\(report.cleared)", "crm.evidence_warnings": "\(report.evidenceWarnings)",
            "crm.duration": "\(ContinuousClock.now - collectionsStarted)",
          ])
      }
    } catch {
      logger.warning("collections failed; retrying next interval", metadata: ["crm.job": "collections", "error": "\(error)"])
    }
    do {
      let taken = try await forecasts.takeDueSnapshots()
      if taken > 0 {
        logger.info("weekly forecast snapshots taken", metadata: ["crm.job": "forecast-snapshots", "crm.tenants": "\(taken)"])
      }
    } catch {
      logger.warning(
        "forecast snapshots failed; retrying next interval", metadata: ["crm.job": "forecast-snapshots", "error": "\(error)"])
    }
    do {
      let scoringStarted = ContinuousClock.now
      let report = try await scoring.runJob()
      if report.trained + report.scored > 0 {
        logger.info(
          "lead scoring: models trained, leads scored",
          metadata: [
            "crm.job": "lead-scoring", "crm.trained": "\(report.trained)", "crm.scored": "\(report.scored)",
            "crm.duration": "\(ContinuousClock.now - scoringStarted)",
          ])
      }
    } catch {
      logger.warning("lead scoring failed; retrying next interval", metadata: ["crm.job": "lead-scoring", "error": "\(error)"])
    }
  }
}
