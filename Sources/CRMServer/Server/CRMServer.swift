public import CRMCore
import CRMProto
public import CRMStore
public import GRPCCore
public import GRPCNIOTransportHTTP2
public import Logging
public import ServiceLifecycle

/// crmd's gRPC server: every service, the request interceptor, HTTP/2 over POSIX sockets.
///
/// It is a swift-service-lifecycle `Service`: `run()` serves until graceful shutdown, which stops
/// accepting calls and lets in-flight ones finish. It does not own the database; whoever made the
/// ``Database`` closes it after this service stops.
public final class CRMServer: Service {
  /// The underlying grpc-swift server.
  public let server: GRPCServer<HTTP2ServerTransport.Posix>
  let logger: Logger

  /// The names of the services served, for health and reflection.
  public static let serviceNames: Set<String> = [
    "crm.v1.AccountService", "crm.v1.ContactService", "crm.v1.LeadService", "crm.v1.DuplicateService",
    "crm.v1.ChangeService", "crm.v1.AdminService", "crm.v1.InteractionService", "crm.v1.CaptureService",
    "crm.v1.ImportService", "crm.v1.OpportunityService", "crm.v1.PoolService",
    "crm.v1.AssignmentService", "crm.v1.TaskService", "crm.v1.TicketService", "crm.v1.SLAService", "crm.v1.BillingService",
    "crm.v1.CollectionService", "crm.v1.SatisfactionService", "crm.v1.WebhookService", "crm.v1.TriggerRuleService",
    "crm.v1.ApprovalService", "crm.v1.InsightService", "crm.v1.ForecastService", "crm.v1.AnalyticsService",
    "crm.v1.SearchService", "crm.v1.ScoringService", "crm.v1.CustomFieldService",
    "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
  ]

  /// The services callers reach without a token: health checks, and customers answering CSAT surveys
  /// (whose token is the credential).
  public static let openServices: Set<String> = ["grpc.health.v1.Health", "crm.v1.SatisfactionService"]

  /// Builds the server over `database`; nothing listens until ``run()``. `now` is the clock that token
  /// caches and rate limits go by, `slaClock` the wall clock SLA timers go by (tests move both).
  /// `webhooks` is the node's webhook dispatcher (redeliveries go through it); whoever made it runs
  /// it and shuts its sender down.
  public init(
    configuration: ServerConfiguration, database: Database, webhooks: WebhookDispatcher, logger: Logger,
    now: @escaping @Sendable () -> ContinuousClock.Instant = { .now },
    slaClock: @escaping @Sendable () -> Timestamp = { .now }
  ) throws {
    self.logger = logger
    let authenticator = Authenticator(store: AccessStore(database: database), ttl: configuration.authCacheTTL, now: now)
    let accounts = AccountStore(database: database)
    let contacts = ContactStore(database: database)
    let merges = MergeStore(database: database)
    let tickets = TicketStore(database: database, now: slaClock)
    let reflection = try ReflectionService(exposing: Self.serviceNames)
    let services: [any RegistrableRPCService] = [
      AccountService(accounts: accounts, contacts: contacts, merges: merges),
      ContactService(contacts: contacts, merges: merges),
      LeadService(leads: LeadStore(database: database), merges: merges),
      InteractionService(interactions: InteractionStore(database: database)),
      ImportService(imports: ImportStore(database: database, leaseDuration: configuration.importLease)),
      OpportunityService(pipelines: PipelineStore(database: database), opportunities: OpportunityStore(database: database)),
      PoolService(pools: PoolStore(database: database), authenticator: authenticator),
      AssignmentService(assignments: AssignmentStore(database: database)),
      TriggerRuleService(rules: TriggerRuleStore(database: database)),
      CustomFieldService(fields: CustomFieldStore(database: database)),
      ApprovalService(approvals: ApprovalStore(database: database)),
      TaskService(tasks: TaskStore(database: database)),
      TicketService(tickets: tickets),
      SLAService(
        config: ServiceConfigStore(database: database, now: slaClock),
        escalations: EscalationStore(database: database, now: slaClock),
        tickets: tickets),
      SatisfactionService(tickets: tickets),
      BillingService(billing: BillingStore(database: database, now: slaClock), tickets: tickets),
      CollectionService(billing: BillingStore(database: database, now: slaClock)),
      InsightService(
        accounts: accounts, contacts: contacts, leads: LeadStore(database: database),
        opportunities: OpportunityStore(database: database), tickets: tickets, tasks: TaskStore(database: database),
        interactions: InteractionStore(database: database), billing: BillingStore(database: database, now: slaClock),
        now: slaClock),
      ForecastService(
        forecasts: ForecastStore(database: database, now: slaClock), opportunities: OpportunityStore(database: database),
        now: slaClock),
      AnalyticsService(
        analytics: AnalyticsStore(database: database, forecasts: ForecastStore(database: database, now: slaClock)),
        now: slaClock),
      SearchService(search: SearchStore(database: database), now: slaClock),
      ScoringService(scoring: ScoringStore(database: database, now: slaClock)),
      CaptureService(
        captures: CaptureStore(database: database), tickets: tickets,
        access: AccessStore(database: database), authenticator: authenticator),
      DuplicateService(duplicates: DuplicateStore(database: database), rules: DuplicateRuleStore(database: database)),
      ChangeService(
        history: HistoryStore(database: database), feed: ChangeFeedStore(database: database), wakeup: webhooks.wakeup),
      WebhookService(store: webhooks.store, dispatcher: webhooks),
      AdminService(access: AccessStore(database: database), authenticator: authenticator),
      HealthService(database: database, services: Self.serviceNames),
      reflection,
      ReflectionServiceV1Alpha(reflection),
    ]
    var transportConfig = HTTP2ServerTransport.Posix.Config.defaults
    transportConfig.rpc.maxRequestPayloadSize = configuration.maxRequestBytes
    transportConfig.connection.keepalive.time = configuration.keepaliveTime
    transportConfig.connection.keepalive.timeout = configuration.keepaliveTimeout
    transportConfig.connection.maxIdleTime = configuration.maxIdleTime
    transportConfig.channelDebuggingCallbacks.onAcceptTCPConnection = { HeaderListLimit.install(on: $0) }
    let security: HTTP2ServerTransport.Posix.TransportSecurity
    if let tls = configuration.tls {
      security = .tls(
        certificateChain: [.file(path: tls.certificatePath, format: .pem)],
        privateKey: .file(path: tls.keyPath, format: .pem))
    } else {
      security = .plaintext
    }
    let transport = HTTP2ServerTransport.Posix(
      address: .ipv4(host: configuration.host, port: configuration.port), transportSecurity: security,
      config: transportConfig)
    server = GRPCServer(
      transport: transport, services: services,
      interceptors: [
        RequestInterceptor(
          authenticator: authenticator, logger: logger, openServices: Self.openServices,
          maxRequestBytes: configuration.maxRequestBytes, now: now)
      ])
  }

  /// The address the server listens on, once it does (the real port when configured with 0).
  public var listeningAddress: GRPCNIOTransportHTTP2.SocketAddress? {
    get async throws { try await server.listeningAddress }
  }

  /// Serves until graceful shutdown; in-flight calls finish first.
  public func run() async throws {
    try await withGracefulShutdownHandler {
      try await server.serve()
    } onGracefulShutdown: {
      self.server.beginGracefulShutdown()
    }
  }

  /// Stops accepting calls and lets in-flight ones finish.
  public func beginGracefulShutdown() { server.beginGracefulShutdown() }
}
